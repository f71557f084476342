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
import logging
import os
import time
from pathlib import Path

import faust
from prometheus_client import start_http_server

from emostream.worker.deadletters.sender import DeadLetterSender
from emostream.worker.partition_offsets import OffsetTracker

from . import metrics as m
from .batching import BatchSizer, adaptive_take
from .pipeline import BatchProcessor, Message
from .settings import WorkerSettings

log = logging.getLogger("emostream.worker")


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


def faust_app(settings: WorkerSettings) -> faust.App:
    """The faust app: the group, broker, serialisers and timeouts of the settings."""
    state = Path(settings.state_dir).expanduser()
    state.mkdir(parents=True, exist_ok=True)
    return faust.App(
        settings.consumer_group,
        broker=[f"kafka://{h}" for h in settings.kafka_bootstrap.split(",")],
        value_serializer="raw",
        key_serializer="raw",
        web_enabled=False,
        datadir=str(state / "{conf.name}-data"),
        broker_session_timeout=settings.broker_session_timeout_s,
        broker_heartbeat_interval=settings.broker_heartbeat_interval_s,
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.topic_partitions,
        topic_allow_declare=True,
        producer_acks=-1,
        broker_credentials=broker_credentials(settings),
        stream_wait_empty=False,
    )


def create_app(settings: WorkerSettings) -> faust.App:
    app = faust_app(settings)
    posts = app.topic(settings.topic_posts, key_type=bytes, value_type=bytes)
    dead = app.topic(settings.topic_dead_letter, key_type=bytes, value_type=bytes)
    offsets = OffsetTracker(settings.topic_posts)
    send_dead_letter = DeadLetterSender(dead, settings.redis_retry_max_s)
    sizer = BatchSizer(
        settings.max_batch,
        min_batch=settings.min_batch,
        max_wait_s=settings.max_wait_s,
        latency_target_s=settings.latency_target_s,
        adaptive=settings.adaptive_batching,
    )
    processors: list[BatchProcessor] = []  # one, built by the agent's first run

    @app.agent(posts)
    async def classify(stream):
        if not processors:
            processors.append(await BatchProcessor.from_settings(settings, send_dead_letter))
            if settings.worker_metrics_port:
                start_http_server(settings.worker_metrics_port)
        if settings.adaptive_batching:
            batches = adaptive_take(stream, sizer, lambda: offsets.lag(app.consumer))
        else:  # faust's own: always max_batch, max_wait_s from when the agent asks
            batches = stream.noack_take(settings.max_batch, within=settings.max_wait_s)
            m.BATCH_TARGET.set(settings.max_batch)
        await run_stages(stream, batches, processors[0], sizer, offsets)

    @app.timer(interval=5.0)
    async def report_lag() -> None:
        offsets.report_lag(app.consumer)

    @app.on_partitions_revoked.connect
    async def drop_revoked(app, revoked, **kwargs) -> None:
        offsets.forget({tp.partition for tp in revoked if tp.topic == settings.topic_posts})

    @app.on_partitions_assigned.connect
    async def report_assigned(app, assigned, **kwargs) -> None:
        offsets.report_lag(app.consumer)

    return app


async def run_stages(stream, batches, processor: BatchProcessor, sizer, offsets) -> None:
    """Two stages: this loop prepares batch k+1 (records, images) while ``finisher``
    classifies and writes batch k. Messages are acknowledged only after their write.
    At most two prepared batches wait (queue of one + the one being finished)."""

    def stamp(value):
        """Runs as each message arrives, before any batching: when it was received."""
        msg = stream.current_event.message
        offsets.stamp(msg.partition, msg.offset)
        return value

    stream.add_processor(stamp)
    queue: asyncio.Queue = asyncio.Queue(maxsize=1)
    finishing = asyncio.ensure_future(_finisher(stream, queue, processor, sizer, offsets))
    finishing.add_done_callback(_crash_if_failed)
    try:
        async for events in batches:
            messages = [
                Message(
                    e.message.key,
                    e.message.value,
                    e.message.partition,
                    e.message.offset,
                    offsets.take(e.message.partition, e.message.offset),
                )
                for e in events
            ]
            t0 = time.perf_counter()
            prepared = await processor.prepare(messages)
            sizer.observe_prepare(time.perf_counter() - t0)
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


async def _finisher(stream, queue: asyncio.Queue, processor, sizer, offsets) -> None:
    while True:
        events, prepared = await queue.get()
        try:
            t0 = time.perf_counter()
            await processor.complete(prepared)
            sizer.observe(len(prepared.posts), time.perf_counter() - t0)
            for e in events:
                await stream.ack(e)
                offsets.acked(e.message.partition, e.message.offset)
        finally:
            queue.task_done()


def _crash_if_failed(task: asyncio.Future) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.critical("unexpected error in the worker; exiting", exc_info=task.exception())
        os._exit(70)


def run_worker(settings: WorkerSettings, loglevel: str = "info") -> None:
    """Run a worker in this process until SIGTERM / SIGINT."""
    from faust.worker import Worker

    logging.basicConfig(
        level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    app = create_app(settings)
    worker = Worker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
