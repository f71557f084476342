"""Progress of a replay consumed by a worker group, from the group's committed offsets.

A large replay runs on the engine the live stream uses: ``emostream ingest replay`` puts
the files on a replay topic, and N workers in a consumer group of their own, each started
with ``EMOSTREAM_RUN_ID``, write into the run's namespace. The group's committed offsets
are the progress (resumable: a restarted worker continues from them):

    emostream replay-progress --topic emostream.replay.nov --group replay-nov [--watch]

prints done / total, the rate and the ETA (with ``--watch``, a progress bar until done).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from emostream.worker.settings import WorkerSettings


@dataclass(frozen=True)
class Progress:
    done: int
    """Messages at or below the committed offsets."""
    total: int
    """Messages on the topic (high-water marks)."""
    partitions: dict[int, tuple[int, int]]
    """partition -> (committed, high-water mark)."""

    @property
    def left(self) -> int:
        return self.total - self.done


def progress(settings: WorkerSettings, topic: str, group: str) -> Progress:
    from kafka import KafkaConsumer, TopicPartition

    # group_id only to read the group's commits: assigned, never subscribed, it does not
    # join the group; it commits nothing
    probe = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap.split(","),
        group_id=group,
        enable_auto_commit=False,
        **settings.kafka_client_options(),
    )
    try:
        parts = [TopicPartition(topic, p) for p in sorted(probe.partitions_for_topic(topic) or [])]
        if not parts:
            raise ValueError(f"topic {topic!r} has no partitions (does it exist?)")
        committed = {tp.partition: probe.committed(tp) or 0 for tp in parts}
        marks = _high_water_marks(probe, parts, committed)
    finally:
        probe.close(autocommit=False)
    table = {tp.partition: (committed[tp.partition], marks[tp]) for tp in parts}
    return Progress(
        sum(min(c, h) for c, h in table.values()), sum(h for _, h in table.values()), table
    )


def _high_water_marks(probe, parts, committed: dict[int, int]) -> dict:
    """Each partition's high-water mark, read from a fetch at the committed offset (exact
    on every broker; list-offsets answers are not on all of them)."""
    probe.assign(parts)
    for tp in parts:
        probe.seek(tp, committed.get(tp.partition, 0))
    for _ in range(10):
        probe.poll(timeout_ms=500, max_records=1)
        if all(probe.highwater(tp) is not None for tp in parts):
            break
    ends = probe.end_offsets(parts)
    return {
        tp: probe.highwater(tp) if probe.highwater(tp) is not None else ends[tp] for tp in parts
    }


def watch(settings: WorkerSettings, topic: str, group: str, every_s: float = 5.0) -> Progress:
    """A progress bar with rate and ETA until the group has committed everything."""
    from tqdm import tqdm

    now = progress(settings, topic, group)
    bar = tqdm(total=now.total, initial=now.done, desc=f"{group} on {topic}", unit="post")
    while now.left > 0:
        time.sleep(every_s)
        now = progress(settings, topic, group)
        bar.total = now.total
        bar.update(now.done - bar.n)
    bar.close()
    return now
