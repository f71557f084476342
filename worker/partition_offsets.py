"""What the worker knows of its partitions' offsets: received, taken, acknowledged.

* ``stamp`` records when each message arrived (before any batching), for the latency
  histograms;
* ``take`` remembers the last offset taken into a batch, per partition: the backlog
  behind it is the lag that sizes batches;
* ``acked`` remembers the last offset acknowledged (written to Redis), per partition:
  the high-water mark minus it is the consumer-lag gauge.
"""

from __future__ import annotations

from datetime import datetime

from emostream.record import now
from emostream.worker import metrics as m

MAX_STAMPS = 100_000
"""Received-at stamps kept at most (entries of partitions revoked long ago are dropped)."""


class OffsetTracker:
    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.received: dict[tuple[int, int], datetime] = {}
        self.taken: dict[int, int] = {}
        self.last_acked: dict[int, int] = {}
        self.reported: set[int] = set()
        """Partitions whose lag gauge is set."""

    def stamp(self, partition: int, offset: int) -> None:
        if len(self.received) > MAX_STAMPS:
            self.received.clear()
        self.received[(partition, offset)] = now()

    def take(self, partition: int, offset: int) -> datetime | None:
        """A message taken into a batch; returns when it was received (if stamped)."""
        self.taken[partition] = max(offset, self.taken.get(partition, -1))
        return self.received.pop((partition, offset), None)

    def acked(self, partition: int, offset: int) -> None:
        self.last_acked[partition] = offset

    def lag(self, consumer) -> int | None:
        """Posts on our partitions not yet taken into a batch; None until one partition's
        high-water mark and taken offset are known."""
        total = None
        for tp in consumer.assignment():
            high = consumer.highwater(tp) if tp.topic == self.topic else None
            if high is not None and tp.partition in self.taken:
                total = (total or 0) + max(0, high - self.taken[tp.partition] - 1)
        return total

    def report_lag(self, consumer) -> None:
        """The consumer-lag gauge per partition we own: high-water mark minus what is
        acknowledged here (or, before our first ack, what the group had committed).
        Partitions no longer ours lose their gauge, so no lag is counted twice."""
        owned = set()
        for tp in consumer.assignment():
            if tp.topic != self.topic:
                continue
            owned.add(tp.partition)
            high = consumer.highwater(tp)
            if high is None:
                continue
            last = self.last_acked.get(tp.partition)
            done = (last + 1) if last is not None else _committed(consumer, tp)
            m.CONSUMER_LAG.labels(str(tp.partition)).set(max(0, high - done))
        self.forget(set(self.reported) - owned)
        self.reported = owned

    def forget(self, partitions: set[int]) -> None:
        """Partitions revoked from us: their gauges go, their offsets are no longer ours."""
        for p in partitions:
            try:
                m.CONSUMER_LAG.remove(str(p))
            except KeyError:
                pass
            self.last_acked.pop(p, None)
            self.taken.pop(p, None)
        self.reported -= partitions


def _committed(consumer, tp) -> int:
    """The group's committed offset of ``tp`` as faust last saw it (0 if none)."""
    committed = getattr(consumer, "_committed_offset", {}).get(tp)
    return committed if committed is not None else 0
