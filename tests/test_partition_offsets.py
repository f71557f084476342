"""The consumer-lag gauges follow the assignment: a revoked partition's gauge goes."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import REGISTRY

from emostream.worker.partition_offsets import OffsetTracker


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


@dataclass
class Assignment:
    """What OffsetTracker reads of faust's consumer: its partitions and their ends."""

    high: dict[TP, int]
    _committed_offset: dict[TP, int] = field(default_factory=dict)

    def assignment(self) -> set[TP]:
        return set(self.high)

    def highwater(self, tp: TP) -> int:
        return self.high[tp]


def lag(partition: int) -> float | None:
    return REGISTRY.get_sample_value("emostream_consumer_lag", {"partition": str(partition)})


def test_gauges_of_revoked_partitions_are_removed():
    t = OffsetTracker("posts")
    a, b, c = TP("posts", 0), TP("posts", 1), TP("posts", 2)
    t.acked(0, 9)
    t.report_lag(Assignment({a: 100, b: 50}, {b: 40}))
    assert (lag(0), lag(1)) == (90, 10)  # b: from the group's commit before our first ack
    t.report_lag(Assignment({b: 50, c: 7}))  # a rebalance: 0 went elsewhere, 2 came
    assert lag(0) is None and lag(1) == 50 and lag(2) == 7
    t.forget({1, 2})  # revoked (the signal handler): gone at once
    assert lag(1) is None and lag(2) is None and t.reported == set()


def test_other_topics_are_ignored():
    t = OffsetTracker("posts")
    t.report_lag(Assignment({TP("other", 5): 10}))
    assert lag(5) is None
