"""Posts into Kafka with kafka-python: keyed by post id, acks=all, compressed, batched.

Every send is accounted for: a post is *ingested* when Kafka acknowledges it, a
*failure* when the producer gives up on it (after its own retries, within
``producer_delivery_timeout_s``) or cannot even queue it (more than
``producer_max_in_flight`` posts unacknowledged for longer than ``producer_max_block_ms``,
which bounds memory while Kafka is away). Both are counted in metrics and in
:attr:`stats`; nothing is dropped silently.

A fault can leave the producer itself broken: a broker that comes back without its state
(lost disks, a new cluster) does not know the idempotent producer's id, and kafka-python
then fails every later send. Such errors say nothing about the posts: the producer is
closed and built anew (with back-off, counted in ``emostream_producer_rebuilds_total``)
and the posts it held are sent again, each at most ``RESENDS`` times. A producer that
only fails for ``producer_unhealthy_after_s`` reports ``emostream_producer_healthy`` 0.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from kafka import KafkaProducer
from kafka import errors as kerrors
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
    rebuilds: int = 0
    resent: int = 0

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


PRODUCER_STATE_ERRORS = (
    kerrors.UnknownProducerIdError,
    kerrors.OutOfOrderSequenceNumberError,
    kerrors.InvalidProducerEpochError,
    kerrors.InvalidProducerIdMappingError,
    kerrors.ProducerFencedError,
    kerrors.IllegalStateError,
)
"""Errors about the producer's own state (its id, epoch, sequence), not about a post."""

RESENDS = 3
"""How often one post is sent again after the producer that held it was rebuilt."""


def breaks_the_producer(exc: BaseException) -> bool:
    """Whether an error means this producer cannot send any more (rebuild it): its state
    errors, and kafka-python's bare KafkaError ("a previous idempotent request failed",
    a failed InitProducerId); errors about one record (too large, timed out) do not."""
    return isinstance(exc, PRODUCER_STATE_ERRORS) or type(exc) is KafkaError


class PostProducer:
    def __init__(self, settings: IngestSettings, source: str, **overrides) -> None:
        self.topic = settings.topic_posts
        self.source = source
        self.stats = ProducerStats()
        self.max_in_flight = settings.producer_max_in_flight
        self.max_block_s = settings.producer_max_block_ms / 1000
        self.unhealthy_after_s = settings.producer_unhealthy_after_s
        self._config = {**_config(settings, source), **overrides}
        self._connect_s = settings.producer_connect_s
        self._lock = threading.Condition()
        self._held: list[tuple[Post, int]] = []  # (post, times sent) to send again
        self._broken = False
        self._generation = 0  # which producer a send went to
        self._rebuild_waits = Backoff(first_s=0.5, max_s=30.0).delays()
        self._acked_at_rebuild = 0
        self._failing_since: float | None = None
        m.PRODUCER_HEALTHY.labels(source).set_function(lambda: float(self.healthy))
        self._producer = _connect(self._config, self._connect_s)

    @property
    def healthy(self) -> bool:
        """False once sends have only failed for ``producer_unhealthy_after_s``."""
        since = self._failing_since
        return since is None or time.monotonic() - since < self.unhealthy_after_s

    # -- outcomes (called from kafka-python's sender thread) ----------------------------
    def _ok(self, _meta) -> None:
        with self._lock:
            self.stats.acked += 1
            self._failing_since = None
            self._lock.notify()
        m.INGESTED.labels(self.source).inc()
        m.IN_FLIGHT.dec()

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            self.stats.failed += 1
            if self._failing_since is None:
                self._failing_since = time.monotonic()
            self._lock.notify()
        m.PRODUCE_FAILURES.labels(self.source, type(exc).__name__).inc()
        m.IN_FLIGHT.dec()
        log.error("post not delivered to Kafka: %s", exc)

    def _errored(self, exc: BaseException, post: Post, times: int, generation: int) -> bool:
        """A send failed: held for a new producer if this one broke (or was replaced
        meanwhile), else counted as failed. Whether it was held."""
        replaced = generation != self._generation
        if (replaced or breaks_the_producer(exc)) and times <= RESENDS:
            with self._lock:
                self._held.append((post, times))
                self._broken = self._broken or not replaced
            log.warning("producer cannot send (%s): post held for a new producer", exc)
            return True
        self._failed(exc)
        return False

    # -- sending ----------------------------------------------------------------------------
    def send(self, post: Post) -> bool:
        """Queue a post; False (and counted) if it could not even be queued."""
        self._repair()
        with self._lock:
            room = self._lock.wait_for(
                lambda: self.stats.in_flight < self.max_in_flight, timeout=self.max_block_s
            )
            self.stats.sent += 1
        m.IN_FLIGHT.inc()
        if not room:
            self._failed(KafkaTimeoutError(f"{self.max_in_flight} posts unacknowledged"))
            return False
        return self._dispatch(post, times=1)

    def _dispatch(self, post: Post, times: int) -> bool:
        generation = self._generation
        try:
            future = self._producer.send(self.topic, key=key(post), value=encode(post))
        except KafkaError as exc:
            return self._errored(exc, post, times, generation)

        def errback(exc: BaseException) -> None:
            self._errored(exc, post, times + 1, generation)

        future.add_callback(self._ok)
        future.add_errback(errback)
        return True

    def _repair(self) -> None:
        """Rebuild a broken producer, then send again what it held."""
        with self._lock:
            broken, held = self._broken, self._held
            self._broken, self._held = False, []
        if broken:
            self._rebuild()
        if held:
            self.stats.resent += len(held)
            for post, times in held:
                self._dispatch(post, times)

    def _rebuild(self) -> None:
        if self.stats.acked > self._acked_at_rebuild:  # it worked since: start back-off again
            self._rebuild_waits = Backoff(first_s=0.5, max_s=30.0).delays()
        self._acked_at_rebuild = self.stats.acked
        wait = next(self._rebuild_waits)
        log.warning("rebuilding the Kafka producer in %.1fs", wait)
        time.sleep(wait)
        old, self._generation = self._producer, self._generation + 1
        try:
            old.close(timeout=0)  # what it still holds comes back through _errored
        except KafkaError as exc:
            log.warning("closing the broken producer: %s", exc)
        self._producer = _connect(self._config, self._connect_s)
        self.stats.rebuilds += 1
        m.PRODUCER_REBUILDS.labels(self.source).inc()

    def _settled(self) -> bool:
        with self._lock:
            return not (self._broken or self._held)

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait for every post sent so far, rebuilding the producer as often as needed."""
        self._producer.flush(timeout=timeout_s)
        while not self._settled():
            self._repair()
            self._producer.flush(timeout=timeout_s)

    def close(self, timeout_s: float = 30.0) -> None:
        try:
            self.flush(timeout_s)
        except KafkaError as exc:
            log.error("flush failed: %s", exc)
        self._producer.close(timeout=timeout_s)
        lost = self.stats.in_flight
        if lost:  # never acknowledged nor failed before close: count them as failed
            with self._lock:
                self.stats.failed += lost
            m.PRODUCE_FAILURES.labels(self.source, "unacknowledged_at_close").inc(lost)


def _config(settings: IngestSettings, source: str) -> dict:
    compression = settings.producer_compression
    return dict(
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
