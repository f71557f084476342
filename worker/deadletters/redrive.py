"""The dead-letter topic, read back: list, show, and re-drive messages to the posts topic.

    emostream deadletters list [--reason invalid_utf8] [--since 2026-11-24T00:00:00Z]
    emostream deadletters show 0:17
    emostream deadletters redrive --reason internal_error [--until ...] [--dry-run]

Each dead letter (``worker/deadletters/payload.py``) holds the reason, the time, the original key
and the original bytes. ``redrive`` sends the chosen originals back to the posts topic,
with their keys, once the cause is fixed (a worker bug, a dependency); a message that is
still bad is dead-lettered again. Re-driving is idempotent: results are written once per
post id and model version, so a message re-driven twice is counted once. Originals cut
at the dead letter's size cap are never re-driven (their bytes are incomplete).
"""

from __future__ import annotations

from datetime import datetime

from emostream.worker.deadletters.payload import DeadLetter
from emostream.worker.settings import WorkerSettings


def read_all(settings: WorkerSettings, topic: str | None = None) -> list[DeadLetter]:
    """Every dead letter on the topic, oldest first per partition (no consumer group: the
    topic is only read, nothing is committed)."""
    from kafka import KafkaConsumer, TopicPartition

    topic = topic or settings.topic_dead_letter
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap.split(","),
        enable_auto_commit=False,
        group_id=None,
        **settings.kafka_client_options(),
    )
    try:
        parts = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])
        ]
        if not parts:
            raise ValueError(f"topic {topic!r} has no partitions (does it exist?)")
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        return _drain(consumer, parts)
    finally:
        consumer.close()


def _drain(consumer, parts) -> list[DeadLetter]:
    """Poll until every partition's position reaches its high-water mark; a partition
    whose mark is still unknown after three empty polls holds nothing."""
    out: list[DeadLetter] = []
    empty_polls = 0
    while empty_polls < 3:
        got = consumer.poll(timeout_ms=1000)
        for tp, records in got.items():
            out += [DeadLetter.from_record(tp.partition, r.offset, r.value) for r in records]
        empty_polls = 0 if got else empty_polls + 1
        if all(_caught_up(consumer, tp) for tp in parts):
            break
    return sorted(out, key=lambda d: (d.partition, d.offset))


def _caught_up(consumer, tp) -> bool:
    mark = consumer.highwater(tp)
    return mark is not None and consumer.position(tp) >= mark


def select(
    letters: list[DeadLetter],
    *,
    reasons: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    refs: list[str] | None = None,
) -> list[DeadLetter]:
    """The dead letters matching every filter given."""
    out = []
    for d in letters:
        if reasons and d.reason not in reasons:
            continue
        if since and (d.at is None or d.at < since):
            continue
        if until and (d.at is None or d.at >= until):
            continue
        if refs and d.ref not in refs:
            continue
        out.append(d)
    return out


def redrive(settings: WorkerSettings, letters: list[DeadLetter]) -> tuple[int, list[str]]:
    """Send the originals back to the posts topic. Returns (sent, refs skipped because
    their original was truncated)."""
    from kafka import KafkaProducer

    skipped = [d.ref for d in letters if d.truncated]
    todo = [d for d in letters if not d.truncated]
    producer = KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap.split(","),
        acks="all",
        max_request_size=2 * 1024 * 1024,
        **settings.kafka_client_options(),
    )
    try:
        futures = [producer.send(settings.topic_posts, key=d.key, value=d.original) for d in todo]
        producer.flush()
        for f in futures:
            f.get(timeout=30)  # raises if the broker refused one
    finally:
        producer.close()
    return len(todo), skipped
