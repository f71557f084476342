"""``emostream replay``: large-scale offline replay through the worker's batch code.

Sources: files (CSV / JSONL / Parquet, or folders of them, the research ``posts.csv``
included) or a Kafka topic between two offsets or timestamps (its own consumer, never the
live group). Every batch goes through :class:`BatchProcessor`, the code the live worker
runs, into the run's own Redis namespace ``emo:replay:<run id>`` (results, counts, feed),
so a backfill never disturbs the live view, and a live worker never sees the replay.

Progress is checkpointed in Redis after every written batch (``…:progress``: rows done,
per file or per partition), so an interrupted replay started again with the same
``--run-id`` resumes where it stopped; already-written posts would be idempotent anyway.
Messages that are not valid posts go to the run's dead-letter stream ``…:dead``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from emostream.ingest.sources.replay import count_rows, files_of, rows_of, to_post
from emostream.pacing import Pacer
from emostream.record import RecordError, encode, now
from emostream.worker.pipeline import Message
from emostream.worker.redis_client import sync_client
from emostream.worker.settings import WorkerSettings

from .export import export, export_format

log = logging.getLogger("emostream.replay")


@dataclass
class ReplaySummary:
    run_id: str
    rows: int = 0
    written: int = 0
    duplicates: int = 0
    dead: Counter = field(default_factory=Counter)
    unclassifiable: int = 0
    seconds: float = 0.0
    resumed_from: int = 0
    exported: int = 0
    """Results written to the replay's ``out`` file."""

    def line(self) -> str:
        rate = self.rows / self.seconds if self.seconds else 0.0
        dead = sum(self.dead.values())
        return (
            f"replay {self.run_id}: {self.rows} rows in {self.seconds:.1f}s ({rate:.1f}/s); "
            f"{self.written} written, {self.duplicates} already there, {dead} dead-lettered "
            f"{dict(self.dead)}, {self.unclassifiable} unclassifiable"
            + (f"; resumed after {self.resumed_from} rows" if self.resumed_from else "")
            + (f"; {self.exported} results exported" if self.exported else "")
        )


def file_messages(
    paths: list[Path],
    run_id: str,
    image_base_url: str | None,
    skip: dict[str, int],
    image_base_for=None,
    remote_images: bool = True,
) -> Iterator[tuple[str, Message]]:
    """(checkpoint key, message) per row; rows already done (per ``skip``) are not read.
    ``image_base_for(path)`` may give a per-file image base URL (e.g. per dataset folder)."""
    for path in files_of(paths):
        key = str(path.resolve())
        base = image_base_for(path) if image_base_for else image_base_url
        for n, row in enumerate(rows_of(path)):
            if n < skip.get(key, 0):
                continue
            try:
                value = encode(to_post(row, path, run_id, base, remote_images))
            except RecordError as err:
                value = json.dumps(
                    {
                        "__replay_error__": err.reason,
                        "detail": err.detail,
                        "row": n,
                        "file": path.name,
                    }
                ).encode()
            except (ValueError, TypeError) as exc:
                value = json.dumps(
                    {
                        "__replay_error__": "invalid_row",
                        "detail": str(exc),
                        "row": n,
                        "file": path.name,
                    }
                ).encode()
            yield key, Message(None, value, 0, n)


def kafka_messages(
    settings: WorkerSettings,
    topic: str,
    run_id: str,
    start: str | None,
    end: str | None,
    skip: dict[str, int],
) -> tuple[int, Iterator]:
    """Messages of ``topic`` between offsets (``123``) or timestamps (ISO 8601), per
    partition, re-stamped with the run id. Returns (how many, iterator)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap.split(","),
        enable_auto_commit=False,
        group_id=None,
        **settings.kafka_client_options(),
    )
    parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
    if not parts:
        raise ValueError(f"topic {topic!r} has no partitions (does it exist?)")
    consumer.assign(parts)

    def bound(spec: str | None, default: dict) -> dict:
        if spec is None:
            return default
        if spec.lstrip("-").isdigit():
            return {tp: int(spec) for tp in parts}
        ms = int(datetime.fromisoformat(spec.replace("Z", "+00:00")).timestamp() * 1000)
        found = consumer.offsets_for_times({tp: ms for tp in parts})
        return {tp: (o.offset if o else default[tp]) for tp, o in found.items()}

    begin = bound(start, consumer.beginning_offsets(parts))
    stop = bound(end, consumer.end_offsets(parts))
    for tp in parts:
        begin[tp] = max(begin[tp], skip.get(f"{topic}:{tp.partition}", 0))
        consumer.seek(tp, begin[tp])
    total = sum(max(0, stop[tp] - begin[tp]) for tp in parts)

    def it():
        remaining = {tp for tp in parts if begin[tp] < stop[tp]}
        while remaining:
            for tp, records in consumer.poll(timeout_ms=1000).items():
                for rec in records:
                    if rec.offset >= stop[tp]:
                        remaining.discard(tp)
                        break
                    value = rec.value
                    try:
                        d = json.loads(value)
                        if isinstance(d, dict):
                            d["run_id"] = run_id
                            value = json.dumps(d).encode()
                    except ValueError:
                        pass  # undecodable: the processor dead-letters it
                    yield (
                        f"{topic}:{tp.partition}",
                        Message(rec.key, value, tp.partition, rec.offset),
                    )
                    if rec.offset + 1 >= stop[tp]:
                        remaining.discard(tp)
        consumer.close()

    return total, it()


def run_replay(
    settings: WorkerSettings,
    *,
    files: list[Path] | None = None,
    topic: str | None = None,
    start: str | None = None,
    end: str | None = None,
    run_id: str | None = None,
    image_base_url: str | None = None,
    rate: float = 0.0,
    tag: str = "",
    progress: bool = True,
    image_base_for=None,
    remote_images: bool = True,
    out: Path | None = None,
) -> ReplaySummary:
    """``out``: also write the run's results (every post of its namespace, the ones of an
    earlier interrupted run included) to this Parquet, JSON Lines or CSV file at the end."""
    if out is not None:
        export_format(out)  # a bad file name fails before the replay, not after it
    run_id = run_id or uuid.uuid4().hex[:12]
    prefix = f"{settings.key_prefix}:replay:{run_id}"
    r = sync_client(settings, decode_responses=True)
    progress_key = f"{prefix}:progress"
    skip: dict[str, int] = {str(k): int(v) for k, v in r.hgetall(progress_key).items()}
    summary = ReplaySummary(run_id, resumed_from=sum(skip.values()))
    if files:
        total = max(0, count_rows(files_of(files)) - summary.resumed_from)
        source = file_messages(files, run_id, image_base_url, skip, image_base_for, remote_images)
    elif topic:
        total, source = kafka_messages(settings, topic, run_id, start, end, skip)
    else:
        raise ValueError("give files or a topic")
    origin = ",".join(map(str, files)) if files else f"kafka:{topic}[{start}:{end}]"
    meta: dict = {"run_id": run_id, "tag": tag, "started_at": now().isoformat(), "source": origin}
    r.hset(f"{prefix}:meta", mapping=meta)

    async def dead_letter(key, value, err: RecordError) -> None:
        r.xadd(
            f"{prefix}:dead",
            {"reason": err.reason, "detail": err.detail[:500], "bytes": len(value or b"")},
            maxlen=100_000,
        )
        summary.dead[err.reason] += 1

    checkpoint = Checkpoint(r, progress_key, dict(skip))
    asyncio.run(_drain(settings, source, total, summary, dead_letter, checkpoint, rate, progress))
    r.hset(
        f"{prefix}:meta",
        mapping={"finished_at": datetime.now(UTC).isoformat(), "summary": summary.line()},
    )
    if out is not None:  # no result at all is a clear error (SettingError), after the run
        summary.exported = export(settings, run_id, out, quiet=not progress)
    return summary


@dataclass
class Checkpoint:
    """Per source partition (or file), the next offset to replay; kept in Redis."""

    client: Any
    key: str
    done: dict[str, int]

    def advance(self, batch: list[tuple[str, Message]]) -> None:
        """After the batch's write: the replay resumes after it."""
        for key, msg in batch:
            self.done[key] = max(self.done.get(key, 0), msg.offset + 1)
        self.client.hset(self.key, mapping=self.done)  # type: ignore[arg-type]


async def _drain(settings, source, total, summary, dead_letter, checkpoint, rate, progress):
    """Every message of ``source`` through the batch code, in batches of ``max_batch``."""
    from emostream.worker.pipeline import BatchProcessor

    processor = await BatchProcessor.from_settings(settings, dead_letter, run_id=summary.run_id)
    bar = tqdm(total=total, desc=f"replay {summary.run_id}", unit="post", disable=not progress)
    t0 = time.monotonic()
    batch: list[tuple[str, Message]] = []

    async def flush() -> None:
        messages = []
        for _, msg in batch:
            if msg.value and msg.value.startswith(b'{"__replay_error__"'):
                info = json.loads(msg.value)
                error = RecordError(info["__replay_error__"], info["detail"])
                await dead_letter(None, msg.value, error)
            else:
                messages.append(msg)
        report = await processor.process(messages)
        summary.written += report.new
        summary.duplicates += report.duplicates
        summary.unclassifiable += report.unclassifiable
        checkpoint.advance(batch)  # after the write: resumable
        summary.rows += len(batch)
        bar.update(len(batch))
        batch.clear()

    pacer = Pacer(rate)
    for item in source:
        batch.append(item)
        if len(batch) >= settings.max_batch:
            await flush()
        await pacer.wait_async()
    if batch:
        await flush()
    bar.close()
    summary.seconds = time.monotonic() - t0
    await processor.fetcher.aclose()
    await processor.store.aclose()
    processor.close()
