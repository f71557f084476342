"""Posts into Kafka with kafka-python: keyed by post id, acks=all, compressed, batched.

Every send is accounted for: a post is *ingested* when Kafka acknowledges it, a
*failure* when the producer gives up on it (after its own retries, within
``producer_delivery_timeout_s``) or cannot even queue it (more than
``producer_max_in_flight`` posts unacknowledged for longer than ``producer_max_block_ms``,
which bounds memory while Kafka is away). Both are counted in metrics and in
:attr:`stats`; nothing is dropped silently.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError

from emostream.record import Post, encode, key
from emostream.retry import Backoff, retry

from . import metrics as m
from .settings import IngestSettings

log = logging.getLogger("emostream.ingest")


@dataclass
class ProducerStats:
    sent: int = 0
    acked: int = 0
    failed: int = 0

    @property
    def in_flight(self) -> int:
        return self.sent - self.acked - self.failed


def _connect(config: dict, give_up_after_s: float) -> KafkaProducer:
    """A producer, once the brokers answer: a broker that starts after ingest (compose,
    a restart) is waited for with back-off, not given up on."""

    def waiting(err: BaseException, delay: float) -> None:
        m.BROKER_UNREACHABLE.inc()
        log.warning(
            "brokers %s unreachable (%s); retry in %.0fs", config["bootstrap_servers"], err, delay
        )

    return retry(
        lambda: KafkaProducer(**config),
        retry_on=(KafkaTimeoutError,),
        backoff=Backoff(first_s=1.0, max_s=30.0),
        give_up_after_s=give_up_after_s,
        on_retry=waiting,
    )


class PostProducer:
    def __init__(self, settings: IngestSettings, source: str, **overrides) -> None:
        compression = settings.producer_compression
        config = dict(
            bootstrap_servers=settings.kafka_bootstrap.split(","),
            acks="all",
            compression_type=None if compression in ("", "none") else compression,
            linger_ms=settings.producer_linger_ms,
            batch_size=settings.producer_batch_bytes,
            max_block_ms=settings.producer_max_block_ms,
            delivery_timeout_ms=int(settings.producer_delivery_timeout_s * 1000),
            request_timeout_ms=min(
                30_000,
                int(settings.producer_delivery_timeout_s * 1000) - settings.producer_linger_ms - 1,
            ),
            client_id=f"emostream-ingest-{source}",
            **settings.kafka_client_options(),
        )
        config.update(overrides)
        self.topic = settings.topic_posts
        self.source = source
        self.stats = ProducerStats()
        self.max_in_flight = settings.producer_max_in_flight
        self.max_block_s = settings.producer_max_block_ms / 1000
        self._lock = threading.Condition()
        self._producer = _connect(config, settings.producer_connect_s)

    def _ok(self, _meta) -> None:
        with self._lock:
            self.stats.acked += 1
            self._lock.notify()
        m.INGESTED.labels(self.source).inc()
        m.IN_FLIGHT.dec()

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            self.stats.failed += 1
            self._lock.notify()
        m.PRODUCE_FAILURES.labels(self.source, type(exc).__name__).inc()
        m.IN_FLIGHT.dec()
        log.error("post not delivered to Kafka: %s", exc)

    def send(self, post: Post) -> bool:
        """Queue a post; False (and counted) if it could not even be queued."""
        with self._lock:
            room = self._lock.wait_for(
                lambda: self.stats.in_flight < self.max_in_flight, timeout=self.max_block_s
            )
            self.stats.sent += 1
        m.IN_FLIGHT.inc()
        if not room:
            self._failed(KafkaTimeoutError(f"{self.max_in_flight} posts unacknowledged"))
            return False
        try:
            future = self._producer.send(self.topic, key=key(post), value=encode(post))
        except KafkaError as exc:
            self._failed(exc)
            return False
        future.add_callback(self._ok)
        future.add_errback(self._failed)
        return True

    def flush(self, timeout_s: float | None = None) -> None:
        self._producer.flush(timeout=timeout_s)

    def close(self, timeout_s: float = 30.0) -> None:
        try:
            self._producer.flush(timeout=timeout_s)
        except KafkaError as exc:
            log.error("flush failed: %s", exc)
        self._producer.close(timeout=timeout_s)
        lost = self.stats.in_flight
        if lost:  # never acknowledged nor failed before close: count them as failed
            with self._lock:
                self.stats.failed += lost
            m.PRODUCE_FAILURES.labels(self.source, "unacknowledged_at_close").inc(lost)
