"""Two model versions side by side: a shadow worker group with other weights classifies the
same posts under its own keys, the live results stay untouched, and the API compares."""

from __future__ import annotations

import redis
from helpers import produce, text_posts, wait_for

from emostream.model.weights import Weights
from emostream.testing import create_topics


def totals(r: redis.Redis, prefix: str) -> dict[str, int]:
    return {
        k.rsplit(":totals:", 1)[1]: sum(int(v) for v in r.hvals(k))
        for k in r.keys(f"{prefix}:totals:*")
    }


def test_a_shadow_group_never_touches_the_live_results(
    broker, redis_server, worker_process, data_dir, unique, api_process
):
    live_v, shadow_v = Weights.DEFAULT.version, Weights.COMMONSPACE_V1.version
    posts = text_posts(data_dir, 40, "shadow")
    topic = unique("posts")
    create_topics(broker, {topic: 2})
    workers = [
        worker_process(broker, redis_server.port, topic_posts=topic, consumer_group=unique("g")),
        worker_process(
            broker,
            redis_server.port,
            topic_posts=topic,
            consumer_group=unique("shadow"),
            weights="COMMONSPACE_V1",
            shadow=True,
        ),
    ]
    produce(broker, topic, posts)
    r = redis.Redis(port=redis_server.port, decode_responses=True)
    shadow_prefix = f"emo:shadow:{shadow_v}"
    for w, prefix in zip(workers, ("emo", shadow_prefix), strict=True):
        wait_for(lambda p=prefix: sum(totals(r, p).values()) >= 40, proc=w, what=prefix)
    assert totals(r, "emo") == {live_v: 40} and totals(r, shadow_prefix) == {shadow_v: 40}
    assert {r.hget(f"emo:post:{p.id}", "model_version") for p in posts} == {live_v}
    assert len(r.keys(f"{shadow_prefix}:post:*")) == 40

    api = api_process(redis_server.port)
    cmp = api.get("/api/compare", params={"shadow": shadow_v}).json()
    versions = api.get("/api/versions").json()
    bad = api.get("/api/compare", params={"shadow": "a b"})
    same = sum(
        r.hget(f"emo:post:{p.id}", "label") == r.hget(f"{shadow_prefix}:post:{p.id}", "label")
        for p in posts
    )
    assert cmp["posts"] == 40 and cmp["live"] == [live_v]
    assert cmp["emotion_agreement"] == same / 40
    assert sum(n for row in cmp["confusion"].values() for n in row.values()) == 40
    assert sum(cmp["confusion"].get(k, {}).get(k, 0) for k in cmp["confusion"]) == same
    assert versions == {
        "live": [{"version": live_v, "posts": 40}],
        "shadow": [{"version": shadow_v, "posts": 40}],
    }
    assert bad.status_code == 400
    print(f"\nv1 shadowing v2 on 40 posts: emotion agreement {same / 40:.2f}")
