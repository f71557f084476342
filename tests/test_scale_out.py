"""Scale-out: workers in one consumer group share a 6-partition topic while a fourth joins
and one is killed with kill -9. Nothing is lost, nothing counted twice, every partition is
owned by exactly one live worker at the end, and the lag gauges say so."""

from __future__ import annotations

import os
import signal

import redis
from helpers import metrics, produce, text_posts, wait_for, written
from test_faults import assert_exactly_once

from emostream.testing import create_topics

PARTITIONS = 6


def owned(w) -> dict[int, float]:
    """The partitions a worker reports lag for (its assignment), with the lag."""
    try:
        samples = metrics(w.metrics_port)
    except OSError:
        return {}
    return {
        int(k.split('partition="')[1].split('"')[0]): v
        for k, v in samples.items()
        if k.startswith("emostream_consumer_lag{")
    }


def settled(workers, all_busy: bool = False) -> bool:
    """Every partition owned by exactly one of ``workers`` (and, with ``all_busy``, each
    worker owning some). faust's assignor is sticky with ceil(partitions / members) per
    member: a fourth member joining three that own 2 each gets none until one leaves."""
    parts = [p for w in workers for p in owned(w)]
    covered = sorted(parts) == list(range(PARTITIONS))
    return covered and (not all_busy or all(owned(w) for w in workers))


def up(w) -> bool:
    """The worker is in the group with its model loaded (its /metrics answers)."""
    try:
        metrics(w.metrics_port)
    except OSError:
        return False
    return True


def test_three_workers_a_fourth_joins_one_is_killed(
    broker, redis_server, worker_process, data_dir, unique
):
    posts = text_posts(data_dir, 2400, "scale")
    chunks = [posts[:800], posts[800:1600], posts[1600:]]
    topic, group = unique("posts"), unique("g")
    create_topics(broker, {topic: PARTITIONS})
    r = redis.Redis(port=redis_server.port, decode_responses=True)

    def start():
        return worker_process(broker, redis_server.port, topic_posts=topic, consumer_group=group)

    workers = [start() for _ in range(3)]
    produce(broker, topic, chunks[0])
    wait_for(lambda: settled(workers, all_busy=True), what="three workers sharing six partitions")
    wait_for(lambda: written(r) >= 100, what="progress")

    workers.append(start())  # a fourth joins while the first chunk drains
    wait_for(
        lambda: up(workers[-1]) and settled(workers),
        what=lambda: f"four after the join: {[owned(w) for w in workers]}",
    )
    produce(broker, topic, chunks[1])
    victim = max(workers, key=lambda w: len(owned(w)))  # one that owns partitions
    workers.remove(victim)
    produce(broker, topic, chunks[2])  # in flight when the kill comes, whatever the speed
    before_kill = written(r)
    wait_for(lambda: written(r) >= before_kill + 50, what="progress", every_s=0.02)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(10)
    killed_at = written(r)
    assert killed_at < len(posts), "the kill came after everything was written"

    wait_for(
        lambda: len(r.keys("emo:post:*")) >= len(posts),
        timeout_s=300,
        what="every post",
        every_s=1.0,
    )
    wait_for(
        lambda: settled(workers) and sum(v for w in workers for v in owned(w).values()) == 0,
        timeout_s=120,
        what="three survivors own all partitions, lag 0",
    )
    assert all(w.poll() is None for w in workers)
    assert_exactly_once(r, [p.id for p in posts])
    share = {w.pid: sorted(owned(w)) for w in workers}
    print(f"\nkill -9 at {killed_at} written; survivors own {share}; {len(posts)} exactly once")
