"""A message that makes a stage fail is found, dead-lettered and the rest of its batch goes
on; a failure of every message is not pinned on any of them."""

from __future__ import annotations

import asyncio

import pytest
import redis

from emostream.record import encode, make_post, now
from emostream.worker.containment import SystemicFailure, bisect_failures
from emostream.worker.pipeline import Message


def run_bisect(rows, bad):
    calls = []

    async def run(rs):
        calls.append(list(rs))
        if any(r in bad for r in rs):
            raise ValueError(f"bad among {rs}")
        return [r * 10 for r in rs]

    return asyncio.run(bisect_failures(rows, run)), calls


def test_one_culprit_is_found_and_the_rest_kept():
    (results, failures), calls = run_bisect(list(range(8)), {5})
    assert set(failures) == {5} and isinstance(failures[5], ValueError)
    assert results == {r: r * 10 for r in range(8) if r != 5}
    assert len(calls) <= 1 + 2 * 3  # log2(8) levels, two halves each


def test_no_failure_is_one_call():
    (results, failures), calls = run_bisect([3, 4, 5], set())
    assert failures == {} and results == {3: 30, 4: 40, 5: 50} and calls == [[3, 4, 5]]


def test_several_culprits():
    (results, failures), _ = run_bisect(list(range(10)), {0, 7, 9})
    assert set(failures) == {0, 7, 9} and set(results) == set(range(10)) - {0, 7, 9}


def test_every_message_failing_is_not_their_fault():
    with pytest.raises(SystemicFailure):
        run_bisect(list(range(4)), {0, 1, 2, 3})
    (results, failures), _ = run_bisect([7], {7})  # one message alone: it is the culprit
    assert set(failures) == {7} and results == {}


def messages(texts: list[str], tag: str) -> list[Message]:
    posts = [
        make_post(id=f"{tag}:{i}", source="reddit", created_at=now(), text=t)
        for i, t in enumerate(texts)
    ]
    return [Message(p.id.encode(), encode(p), 0, i) for i, p in enumerate(posts)]


TEXTS = [f"an ordinary post number {i}" for i in range(7)] + ["POISON text"]


def poison_encoder(monkeypatch, classifier, always: bool = False) -> None:
    """Fault injection: the real text encoder, failing on any batch holding a poisoned text."""
    real = classifier.encoder.encode_texts

    def encode_texts(texts, *a, **kw):
        if always or any("POISON" in t for t in texts):
            raise RuntimeError("the encoder choked")
        return real(texts, *a, **kw)

    monkeypatch.setattr(classifier.encoder, "encode_texts", encode_texts)


def test_a_message_that_breaks_the_model_is_dead_lettered(
    processor, classifier, redis_server, monkeypatch
):
    poison_encoder(monkeypatch, classifier)
    dead: list = []
    report = asyncio.run(processor(reuse_size=0, dead_letters=dead).process(messages(TEXTS, "m")))
    assert report.posts == 7 and report.new == 7 and report.dead_lettered == 1
    [(key, value, err)] = dead
    assert key == b"m:7" and b"POISON" in value
    assert err.reason == "internal_error" and "classify: RuntimeError" in err.detail
    r = redis.Redis(port=redis_server.port, decode_responses=True)
    assert sorted(r.keys("emo:post:*")) == sorted(f"emo:post:m:{i}" for i in range(7))


def test_a_message_that_breaks_the_store_write_is_dead_lettered(
    processor, redis_server, monkeypatch
):
    proc = processor(reuse_size=0, dead_letters=(dead := []))
    real = proc.store.write

    async def write(results):
        if any(r.id == "s:3" for r in results):
            raise ValueError("the store choked")
        return await real(results)

    monkeypatch.setattr(proc.store, "write", write)
    report = asyncio.run(proc.process(messages(TEXTS[:6], "s")))
    assert report.new == 5 and report.dead_lettered == 1
    assert [k for k, _, _ in dead] == [b"s:3"] and "store: ValueError" in dead[0][2].detail


def test_a_failure_of_every_message_stops_the_worker_and_dead_letters_nothing(
    processor, classifier, monkeypatch
):
    poison_encoder(monkeypatch, classifier, always=True)
    proc = processor(reuse_size=0, dead_letters=(dead := []))
    with pytest.raises(SystemicFailure):
        asyncio.run(proc.process(messages(TEXTS[:4], "all")))
    assert dead == []


def test_the_same_id_twice_in_a_batch_keeps_the_first(processor, redis_server):
    first = make_post(id="twice", source="reddit", created_at=now(), text="the first one")
    second = make_post(id="twice", source="reddit", created_at=now(), text="the second one")
    msgs = [Message(b"twice", encode(first), 0, 0), Message(b"twice", encode(second), 0, 1)]
    report = asyncio.run(processor().process(msgs))
    assert report.new == 1 and report.duplicates == 1
    r = redis.Redis(port=redis_server.port, decode_responses=True)
    assert r.hget("emo:post:twice", "text") == "the first one"
    report = asyncio.run(processor().process([Message(b"twice", encode(second), 0, 2)]))
    assert report.new == 0 and r.hget("emo:post:twice", "text") == "the first one"


def test_the_namespace_is_the_processors_never_the_messages(processor, redis_server):
    post = make_post(
        id="inj", source="reddit", created_at=now(), text="hello", run_id="someone-elses"
    )
    asyncio.run(processor().process([Message(b"inj", encode(post), 0, 0)]))
    r = redis.Redis(port=redis_server.port, decode_responses=True)
    assert r.keys("emo:replay:*") == [] and r.hget("emo:post:inj", "run_id") is None
    asyncio.run(processor(run_id="mine").process([Message(b"inj", encode(post), 0, 1)]))
    assert r.hget("emo:replay:mine:post:inj", "run_id") == "mine"
    assert r.keys("emo:replay:someone-elses:*") == []
