"""Drive a source into Kafka: pace, count, show progress, summarise."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from tqdm import tqdm

from emostream.pacing import Pacer
from emostream.record import Post, RecordError

from . import metrics as m
from .producer import PostProducer

log = logging.getLogger("emostream.ingest")


@dataclass
class IngestSummary:
    sent: int = 0
    acked: int = 0
    failed: int = 0
    skipped: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.acked / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        skipped = sum(self.skipped.values())
        reasons = ", ".join(f"{k} {v}" for k, v in self.skipped.most_common())
        return (
            f"sent {self.sent}, acknowledged {self.acked}, failed {self.failed}, "
            f"skipped {skipped}{f' ({reasons})' if reasons else ''} "
            f"in {self.seconds:.1f}s ({self.rate:.0f} posts/s)"
        )


def run(
    items: Iterable[Post | RecordError],
    producer: PostProducer,
    *,
    rate: float = 0.0,
    total: int | None = None,
    progress: bool = True,
    desc: str = "ingest",
) -> IngestSummary:
    """Send every post (at ``rate`` per second, 0 = as fast as possible), then flush."""
    summary = IngestSummary()
    pacer = Pacer(rate)
    t0 = time.perf_counter()
    bar = tqdm(total=total, desc=desc, unit="post", disable=not progress)
    try:
        for item in items:
            if isinstance(item, RecordError):
                summary.skipped[item.reason] += 1
                m.SKIPPED.labels(producer.source, item.reason).inc()
                log.warning("skipped: %s", item)
                bar.update(1)
                continue
            pacer.wait()
            producer.send(item)
            bar.update(1)
    finally:
        producer.flush()
        bar.close()
        summary.seconds = time.perf_counter() - t0
        summary.sent = producer.stats.sent
        summary.acked = producer.stats.acked
        summary.failed = producer.stats.failed
    return summary
