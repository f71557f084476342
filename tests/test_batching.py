"""Adaptive batching: the sizing rule, and the worker following a backlog and a trickle."""

from __future__ import annotations

import pytest
import redis
from helpers import metric, produce, text_posts, wait_for, written

from emostream.testing import create_topics
from emostream.worker.batching import BatchSizer


# -- the sizing rule ----------------------------------------------------------------------------
def test_grows_while_behind_and_shrinks_when_caught_up():
    s = BatchSizer(32, min_batch=2)
    assert s.size == 32
    assert [s.next_size(lag=0) for _ in range(5)] == [16, 8, 4, 2, 2]
    assert [s.next_size(lag=1000) for _ in range(5)] == [4, 8, 16, 32, 32]
    assert s.next_size(lag=20) == 32  # between half and full: keep
    assert s.next_size(lag=None) == 32  # no signal yet: keep
    assert s.next_size(lag=15) == 16


def test_latency_target_caps_the_size():
    s = BatchSizer(64, max_wait_s=0.5, latency_target_s=2.0)
    s.observe(posts=32, seconds=3.2)  # 0.1 s per post: (2.0 - 0.5) / 2 / 0.1 = 7 posts
    assert s.latency_cap() == 7
    assert s.next_size(lag=10_000) == 7
    s.observe(posts=10, seconds=0.1)  # faster now (smoothed): the cap rises
    assert s.latency_cap() > 7


def test_cap_never_below_min_batch_nor_above_max():
    s = BatchSizer(16, min_batch=4, max_wait_s=0.5, latency_target_s=0.6)
    s.observe(posts=1, seconds=10.0)
    assert s.latency_cap() == 4
    fast = BatchSizer(16)
    fast.observe(posts=16, seconds=0.001)
    assert fast.latency_cap() == 16


def test_a_batch_leaves_early_by_its_preparation_time():
    s = BatchSizer(32, max_wait_s=0.5)
    assert s.wait_s() == 0.5  # nothing prepared yet
    s.observe_prepare(0.2)
    assert s.wait_s() == pytest.approx(0.3)  # wait + preparation stays within max_wait_s
    s.observe_prepare(0.2)
    s.observe_prepare(0.6)  # smoothed: one slower batch does not take it to 0 ...
    assert 0 < s.wait_s() < 0.3
    for _ in range(20):
        s.observe_prepare(5.0)  # ... but slow fetching for good does, never below 0
    assert s.wait_s() == 0.0
    fixed = BatchSizer(32, max_wait_s=0.5, adaptive=False)
    fixed.observe_prepare(0.2)
    assert fixed.wait_s() == 0.5


def test_fixed_when_not_adaptive():
    s = BatchSizer(32, adaptive=False)
    s.observe(posts=32, seconds=100.0)
    assert {s.next_size(lag) for lag in (0, 5, 10_000)} == {32}


def test_rejects_impossible_bounds():
    with pytest.raises(ValueError):
        BatchSizer(8, min_batch=9)
    with pytest.raises(ValueError):
        BatchSizer(8, min_batch=0)


# -- the worker ---------------------------------------------------------------------------------
def batches(port: int) -> tuple[float, float]:
    """(batches so far, batches of more than 8 posts) from the worker's histogram."""
    total = metric(port, "emostream_batch_size_count")
    small = metric(port, 'emostream_batch_size_bucket{le="8.0"}')
    return total, total - small


@pytest.mark.parametrize("adaptive", [True, False], ids=["adaptive", "fixed"])
def test_backlog_then_trickle(adaptive, broker, redis_server, worker_process, data_dir, unique):
    """A backlog is drained in large batches; then posts sent one at a time, each after the
    previous is written, go one per batch and the adaptive target falls to min_batch."""
    posts = text_posts(data_dir, 70, unique("batching"))
    backlog, trickle = posts[:64], posts[64:]
    topic = unique("posts")
    create_topics(broker, {topic: 1})
    produce(broker, topic, backlog)
    r = redis.Redis(port=redis_server.port, decode_responses=True)
    w = worker_process(
        broker,
        redis_server.port,
        topic_posts=topic,
        consumer_group=unique("g"),
        max_batch=16,
        adaptive_batching=adaptive,
    )
    wait_for(lambda: written(r) >= len(backlog), proc=w, what="the backlog")
    for k in r.scan_iter("emo:post:*"):  # the latency splits into broker and worker shares
        h = r.hgetall(k)
        assert h["ingested_at"] <= h["received_at"] <= h["written_at"], h
    total, large = batches(w.metrics_port)
    assert large >= 1, "a 64-post backlog never filled a batch beyond 8"
    assert metric(w.metrics_port, "emostream_batch_size_sum") == len(backlog)
    for k, post in enumerate(trickle, start=1):
        produce(broker, topic, [post])
        wait_for(lambda k=k: written(r) >= len(backlog) + k, proc=w, what=f"trickle post {k}")
    after, _ = batches(w.metrics_port)
    assert after - total == len(trickle)  # one batch per post: nothing waits for company
    if adaptive:
        assert metric(w.metrics_port, "emostream_batch_target") == 1
    else:
        assert metric(w.metrics_port, "emostream_batch_target") == 16
