"""The faust-streaming worker: an agent over the posts topic that classifies in batches.

    emostream worker                 # reads EMOSTREAM_* settings

The agent takes batches sized to the backlog (``worker/batching.py``: up to
``max_batch``, smaller when caught up, each post waiting at most ``max_wait_s`` for its
batch to fill), or with ``adaptive_batching`` off faust's ``stream.noack_take``. It
works in two overlapping stages: while the model classifies batch k and writes it to
Redis, the agent already decodes batch k+1 and fetches its images. Messages are
acknowledged only after their results are written; faust then commits the acknowledged
offsets. A kill at any moment therefore re-delivers at most the
unacknowledged batches, and the idempotent store makes that harmless.

On SIGTERM faust stops the agent: the batch queued for the model is finished, written
and acknowledged before the worker commits and leaves the group; a batch still being
prepared is left unacknowledged and is delivered again later.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import time
from base64 import b64encode
from datetime import datetime

import faust
import torch
from prometheus_client import start_http_server

from emostream.ingest.record import RecordError, now
from emostream.model import gpu_decode
from emostream.model.classifier import EmotionClassifier

from . import metrics as m
from .address_guard import AddressGuard
from .batching import BatchSizer, adaptive_take
from .feature_reuse import FeatureReuse
from .image_fetch import ImageFetcher
from .pipeline import BatchProcessor, Message
from .settings import WorkerSettings
from .store import ResultStore

log = logging.getLogger("emostream.worker")


DEAD_LETTER_ORIGINAL_BYTES = 256 * 1024
"""The dead letter keeps at most this much of the original message (base64 in JSON), so a
huge message cannot make the dead letter itself too large to send."""


def dead_letter_payload(key: bytes | None, value: bytes | None, err: RecordError) -> bytes:
    """What the dead-letter topic receives: the reason and the original bytes (base64)."""
    value = value or b""
    return json.dumps(
        {
            "reason": err.reason,
            "detail": err.detail[:500],
            "at": now().isoformat(),
            "key": key[:1024].decode("utf-8", "replace") if key else None,
            "original_b64": b64encode(value[:DEAD_LETTER_ORIGINAL_BYTES]).decode(),
            "original_bytes": len(value),
            "original_truncated": len(value) > DEAD_LETTER_ORIGINAL_BYTES,
        }
    ).encode()


def broker_credentials(settings: WorkerSettings):
    """The Kafka security settings in faust's terms (None for PLAINTEXT)."""
    import ssl

    opts = settings.kafka_client_options()
    proto = opts["security_protocol"]
    context = None
    if proto.endswith("SSL"):
        context = ssl.create_default_context(cafile=opts.get("ssl_cafile"))
    if proto.startswith("SASL"):
        return faust.SASLCredentials(
            username=opts["sasl_plain_username"],
            password=opts["sasl_plain_password"],
            ssl_context=context,
            mechanism=opts["sasl_mechanism"],
        )
    if proto == "SSL":
        return faust.SSLCredentials(context)
    return None


async def build_processor(settings: WorkerSettings, dead_letter) -> BatchProcessor:
    """The batch processor with the served model, image fetcher and Redis store."""
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    device = None if settings.device == "auto" else settings.device
    classifier = EmotionClassifier(device=device, precision=settings.precision)
    enc = classifier.encoder
    enc.image_backbone = dataclasses.replace(
        enc.image_backbone,
        transform=dataclasses.replace(enc.transform, max_pixels=settings.image_max_pixels),
    )
    fetcher = ImageFetcher(
        AddressGuard.from_strings(settings.image_allow_networks),
        max_bytes=settings.image_max_bytes,
        timeout_s=settings.image_timeout_s,
        max_redirects=settings.image_max_redirects,
        concurrency=settings.image_concurrency,
    )
    store = ResultStore.from_url(
        settings.redis_url,
        settings.redis_password,
        settings.redis_username,
        settings.redis_ssl_ca,
        prefix=settings.key_prefix,
        ttl_s=settings.result_ttl_s,
        bucket_s=settings.count_bucket_s,
        count_ttl_s=settings.count_ttl_s,
        feed_maxlen=settings.feed_maxlen,
    )
    processor = BatchProcessor(
        classifier,
        fetcher,
        store,
        dead_letter,
        decode_threads=settings.decode_threads,
        redis_retry_max_s=settings.redis_retry_max_s,
        reuse=FeatureReuse(settings.feature_reuse_size, settings.feature_reuse_ttl_s),
        gpu_decoder=(
            gpu_decode.GpuJpegDecoder(enc.transform, enc.device)
            if settings.gpu_decode and gpu_decode.available(enc.device)
            else None
        ),
    )
    await processor.warm_up()  # load both encoders now, not in the first batch
    log.info("emostream ready: model %s on %s", classifier.version, classifier.device)
    return processor


def create_app(settings: WorkerSettings) -> faust.App:
    app = faust.App(
        settings.consumer_group,
        broker=[f"kafka://{h}" for h in settings.kafka_bootstrap.split(",")],
        value_serializer="raw",
        key_serializer="raw",
        web_enabled=False,
        broker_session_timeout=settings.broker_session_timeout_s,
        broker_heartbeat_interval=settings.broker_heartbeat_interval_s,
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.topic_partitions,
        topic_allow_declare=True,
        producer_acks=-1,
        broker_credentials=broker_credentials(settings),
        stream_wait_empty=False,
    )
    posts = app.topic(settings.topic_posts, key_type=bytes, value_type=bytes)
    dead = app.topic(settings.topic_dead_letter, key_type=bytes, value_type=bytes)
    state: dict = {}
    sizer = BatchSizer(
        settings.max_batch,
        min_batch=settings.min_batch,
        max_wait_s=settings.max_wait_s,
        latency_target_s=settings.latency_target_s,
        adaptive=settings.adaptive_batching,
    )

    async def send_dead_letter(key, value, err: RecordError) -> None:
        """Delivered before the original is acknowledged; retried while Kafka refuses it."""
        payload = dead_letter_payload(key, value, err)
        delay = 0.5
        while True:
            try:
                fut = await dead.send(key=key[:1024] if key else key, value=payload)
                await fut
                return
            except Exception as exc:  # noqa: BLE001 - any send failure: hold and retry
                m.DEAD_LETTER_ERRORS.inc()
                log.warning("dead letter not delivered (%s); retry in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, settings.redis_retry_max_s)

    async def start_processor() -> BatchProcessor:
        processor = await build_processor(settings, send_dead_letter)
        if settings.worker_metrics_port:
            start_http_server(settings.worker_metrics_port)
        return processor

    @app.agent(posts)
    async def classify(stream):
        """Two stages: this loop prepares batch k+1 (records, images) while ``finisher``
        classifies and writes batch k. Messages are acknowledged only after their write.
        At most two prepared batches wait (queue of one + the one being finished)."""
        if "processor" not in state:
            state["processor"] = await start_processor()
        processor: BatchProcessor = state["processor"]
        queue: asyncio.Queue = asyncio.Queue(maxsize=1)

        async def finisher() -> None:
            while True:
                events, prepared = await queue.get()
                try:
                    t0 = time.perf_counter()
                    await processor.complete(prepared)
                    sizer.observe(len(prepared.posts), time.perf_counter() - t0)
                    for e in events:
                        await stream.ack(e)
                        state.setdefault("last", {})[e.message.partition] = e.message.offset
                finally:
                    queue.task_done()

        def crash_if_failed(task: asyncio.Future) -> None:
            if not task.cancelled() and task.exception() is not None:
                log.critical("unexpected error in the worker; exiting", exc_info=task.exception())
                os._exit(70)

        def lag() -> int | None:
            """Posts on our partitions not yet taken into a batch; None until one partition's
            high-water mark and taken offset are known."""
            consumer, taken, total = app.consumer, state.setdefault("taken", {}), None
            for tp in consumer.assignment():
                high = consumer.highwater(tp) if tp.topic == settings.topic_posts else None
                if high is not None and tp.partition in taken:
                    total = (total or 0) + max(0, high - taken[tp.partition] - 1)
            return total

        received: dict[tuple[int, int], datetime] = {}

        def stamp(value):
            """Runs as each message arrives, before any batching: when it was received."""
            msg = stream.current_event.message
            if len(received) > 100_000:  # stale entries of partitions revoked long ago
                received.clear()
            received[(msg.partition, msg.offset)] = now()
            return value

        stream.add_processor(stamp)
        if settings.adaptive_batching:
            batches = adaptive_take(stream, sizer, lag)
        else:  # faust's own: always max_batch, max_wait_s from when the agent asks
            batches = stream.noack_take(settings.max_batch, within=settings.max_wait_s)
            m.BATCH_TARGET.set(settings.max_batch)

        finishing = asyncio.ensure_future(finisher())
        finishing.add_done_callback(crash_if_failed)
        try:
            taken = state.setdefault("taken", {})  # last offset taken, per partition
            async for events in batches:
                for e in events:
                    p, offset = e.message.partition, e.message.offset
                    taken[p] = max(offset, taken.get(p, -1))
                messages = [
                    Message(
                        e.message.key,
                        e.message.value,
                        e.message.partition,
                        e.message.offset,
                        received.pop((e.message.partition, e.message.offset), None),
                    )
                    for e in events
                ]
                prepared = await processor.prepare(messages)
                await queue.put((events, prepared))
            await queue.join()  # the stream ended: finish what is queued
            finishing.cancel()
        except asyncio.CancelledError:
            # Stopping (SIGTERM): finish and acknowledge what is queued, then leave; a batch
            # still being prepared is not acknowledged and is delivered again later.
            if not finishing.done():
                log.info("stopping: finishing the queued batch")
                await asyncio.shield(queue.join())
            finishing.cancel()
            raise
        except Exception:
            # A bug, not bad input (bad input is dead-lettered or classified text-only).
            # Crash-only: exit so the supervisor restarts us; nothing unacknowledged is
            # lost, it is delivered again.
            log.critical("unexpected error in the worker; exiting", exc_info=True)
            os._exit(70)

    @app.timer(interval=5.0)
    async def report_lag() -> None:
        consumer = app.consumer
        for tp in consumer.assignment():
            if tp.topic != settings.topic_posts:
                continue
            high = consumer.highwater(tp)
            last = state.get("last", {}).get(tp.partition)
            if high is None:
                continue
            done = (last + 1) if last is not None else 0
            m.CONSUMER_LAG.labels(str(tp.partition)).set(max(0, high - done))

    return app


def run_worker(settings: WorkerSettings, loglevel: str = "info") -> None:
    """Run a worker in this process until SIGTERM / SIGINT."""
    from faust.worker import Worker

    logging.basicConfig(
        level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    app = create_app(settings)
    worker = Worker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
