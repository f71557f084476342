"""The Redis store on a real redis-server: idempotent, counted once per model version."""

import asyncio
import dataclasses
import json
from datetime import UTC, datetime

import redis

from emostream.model.prediction import Prediction
from emostream.worker.store import Keys, Result, ResultStore

PREDICTION_FIELDS = {f.name for f in dataclasses.fields(Prediction)}


def result(i: int, version="v1", label="joy", run_id=None, **kw) -> Result:
    """Post ``i``'s result; keywords of ``Prediction`` go to its prediction, the others to
    the result."""
    t = datetime(2026, 11, 24, 8, 0, i, tzinfo=UTC)
    scores = dict(
        label=label,
        emotions={"joy": 0.9, "anger": 0.1},
        sentiment="positive",
        sentiments={"positive": 1.0},
        modalities=("text",),
        image_status="absent",
        model_version=version,
    )
    mine = {k: v for k, v in kw.items() if k not in PREDICTION_FIELDS}
    scores.update({k: v for k, v in kw.items() if k in PREDICTION_FIELDS})
    base = dict(
        id=f"reddit:{i}",
        source="reddit",
        channel="r/happy",
        created_at=t,
        ingested_at=t,
        written_at=t,
        prediction=Prediction(**scores),
        run_id=run_id,
        text="hi",
    )
    return Result(**{**base, **mine})


def write(port, results, **kw):
    async def go():
        store = ResultStore.from_url(f"redis://127.0.0.1:{port}/0", bucket_s=60, **kw)
        try:
            return await store.write(results)
        finally:
            await store.aclose()

    return asyncio.run(go())


def test_write_once_then_duplicates_change_nothing(redis_server):
    r = redis.Redis(port=redis_server.port, decode_responses=True)
    assert write(redis_server.port, [result(1), result(2, label="anger")]) == [True, True]
    snapshot = {k: (r.type(k), r.dump(k)) for k in r.keys("*")}
    later = result(1, written_at=datetime(2030, 1, 1, tzinfo=UTC))  # a redelivery, later
    assert write(redis_server.port, [later, result(2, label="anger")]) == [False, False]
    assert {k: (r.type(k), r.dump(k)) for k in r.keys("*")} == snapshot
    k = Keys()
    assert r.hget(k.post("reddit:1"), "label") == "joy"
    assert json.loads(r.hget(k.post("reddit:1"), "emotions"))["joy"] == 0.9
    assert r.hgetall(k.totals("v1")) == {"joy": "1", "anger": "1"}
    assert r.xlen(k.feed()) == 2
    assert r.ttl(k.post("reddit:1")) > 0


def test_counts_are_time_bucketed_and_per_model_version(redis_server):
    r = redis.Redis(port=redis_server.port, decode_responses=True)
    write(redis_server.port, [result(1), result(59), result(2)])
    bucket = int(datetime(2026, 11, 24, 8, 0, tzinfo=UTC).timestamp())
    assert r.hgetall(Keys().counts("v1", bucket)) == {
        "reddit|r/happy|joy": "3",
        "reddit|r/happy|s:positive": "3",  # sentiments are counted beside the emotions
    }
    # a new model version counts the same post again, under its own keys
    assert write(redis_server.port, [result(1, version="v2")]) == [True]
    assert r.hgetall(Keys().totals("v2")) == {"joy": "1"}
    assert r.hgetall(Keys().totals("v1")) == {"joy": "3"}


def test_replays_write_under_their_own_namespace(redis_server):
    r = redis.Redis(port=redis_server.port, decode_responses=True)
    write(redis_server.port, [result(1), result(1, run_id="run7")])
    assert r.exists("emo:post:reddit:1") and r.exists("emo:replay:run7:post:reddit:1")
    assert r.xlen("emo:feed") == 1 and r.xlen("emo:replay:run7:feed") == 1


def test_unclassifiable_posts_are_written_and_counted_apart(redis_server):
    r = redis.Redis(port=redis_server.port, decode_responses=True)
    bad = result(
        3,
        label="",
        emotions={},
        sentiment="",
        sentiments={},
        modalities=(),
        image_status="error:timeout",
        status="unclassifiable",
    )
    write(redis_server.port, [bad])
    assert r.hget("emo:post:reddit:3", "status") == "unclassifiable"
    assert r.hgetall("emo:totals:v1") == {"unclassifiable": "1"}
