"""One batch, end to end: decode -> fetch images -> decode images -> classify -> write.

The faust agent (``worker/app.py``) hands every batch it takes to
:meth:`BatchProcessor.process` and acknowledges the messages only after it returns, i.e.
after their results are in Redis (at-least-once; the store's writes are idempotent).

* A message that does not decode goes to the dead-letter sink with its reason code.
* Images are fetched concurrently within limits; decoding runs in a thread pool (or on
  the GPU with nvJPEG, see ``model/gpu_decode.py``) and the forward pass in a thread of
  its own, so the event loop stays free (heartbeats, fetches).
* Repeated work is skipped (``worker/feature_reuse.py``): a text, image URL or image that
  was encoded recently, or that repeats within the batch, is encoded once.
* A post whose image is absent or fails is classified on its text; a post with no text
  whose image fails is written as ``unclassifiable`` with the reason. No post is lost.
* If Redis is down, the batch is held and the write retried with back-off until it
  succeeds: no new batch is taken meanwhile (backpressure, bounded memory).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

import redis.exceptions
import torch

from emostream.ingest.record import Post, RecordError, decode, now
from emostream.model import gpu_decode
from emostream.model.classifier import EmotionClassifier
from emostream.retry import Backoff, retry_async

from . import metrics as m
from .address_guard import AddressGuard
from .batch_classifier import BatchClassifier
from .feature_reuse import FeatureReuse
from .image_fetch import ImageFetcher
from .image_preparation import ImagePreparer, PreparedImages
from .settings import WorkerSettings
from .store import Result, ResultStore

log = logging.getLogger("emostream.worker")

DeadLetter = Callable[[bytes | None, bytes | None, RecordError], Awaitable[None]]

REDIS_ERRORS = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    OSError,
)
"""Errors that mean "Redis is away": the batch is held and the write retried."""


@dataclass(frozen=True)
class Message:
    key: bytes | None
    value: bytes | None
    partition: int = 0
    offset: int = -1
    received_at: datetime | None = None
    """When the worker received it from Kafka (None: when the batch started)."""


@dataclass
class Prepared:
    """A batch whose records are decoded and images fetched and decoded."""

    posts: list[Post]
    images: PreparedImages
    dead_lettered: int
    started: float
    received: list[datetime] = field(default_factory=list)
    """When the worker received each post from Kafka."""


@dataclass
class BatchReport:
    posts: int = 0
    new: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    unclassifiable: int = 0
    seconds: float = 0.0
    results: list[Result] = field(default_factory=list)


class BatchProcessor:
    def __init__(
        self,
        classifier: EmotionClassifier,
        fetcher: ImageFetcher,
        store: ResultStore,
        dead_letter: DeadLetter,
        *,
        decode_threads: int = 2,
        redis_retry_max_s: float = 10.0,
        reuse: FeatureReuse | None = None,
        gpu_decoder: gpu_decode.GpuJpegDecoder | None = None,
    ) -> None:
        self.classifier = classifier
        self.fetcher = fetcher
        self.store = store
        self.dead_letter = dead_letter
        self.redis_backoff = Backoff(first_s=0.2, max_s=redis_retry_max_s)
        self.reuse = reuse if reuse is not None else FeatureReuse(size=0)
        self.images = ImagePreparer(
            classifier.encoder.decode,
            fetcher,
            self.reuse,
            decode_threads=decode_threads,
            gpu_decoder=gpu_decoder,
        )
        self.model = BatchClassifier(classifier, self.reuse)
        m.MODEL_INFO.info({"version": classifier.version, "device": str(classifier.device)})

    @classmethod
    async def from_settings(cls, settings: WorkerSettings, dead_letter) -> BatchProcessor:
        """The served model, image fetcher and Redis store as the settings say, warmed up."""
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
        use_gpu_decode = settings.gpu_decode and gpu_decode.available(enc.device)
        processor = cls(
            classifier,
            fetcher,
            ResultStore.from_settings(settings),
            dead_letter,
            decode_threads=settings.decode_threads,
            redis_retry_max_s=settings.redis_retry_max_s,
            reuse=FeatureReuse(settings.feature_reuse_size, settings.feature_reuse_ttl_s),
            gpu_decoder=(
                gpu_decode.GpuJpegDecoder(enc.transform, enc.device) if use_gpu_decode else None
            ),
        )
        await processor.warm_up()  # load both encoders now, not in the first batch
        log.info("emostream ready: model %s on %s", classifier.version, classifier.device)
        return processor

    async def warm_up(self) -> None:
        await self.model.warm_up()

    def close(self) -> None:
        self.images.close()
        self.model.close()

    # -- the batch --------------------------------------------------------------------------
    async def process(self, messages: list[Message]) -> BatchReport:
        """The whole batch: ``complete(await prepare(messages))``."""
        return await self.complete(await self.prepare(messages))

    async def prepare(self, messages: list[Message]) -> Prepared:
        """The I/O half: decode records (dead-letter the bad), fetch and decode images.

        The worker runs this for the next batch while ``complete`` runs the model on the
        current one, so fetching overlaps computing.
        """
        t0 = time.perf_counter()
        posts, received = await self._decode_messages(messages)
        if posts:
            m.BATCH_SIZE.observe(len(posts))
        images = await self.images.prepare(posts) if posts else PreparedImages.empty(0)
        return Prepared(posts, images, len(messages) - len(posts), t0, received)

    async def complete(self, prepared: Prepared) -> BatchReport:
        """The compute half: one forward pass, one Redis pipeline (retried until written)."""
        report = BatchReport(dead_lettered=prepared.dead_lettered)
        if not prepared.posts:
            return report
        t1 = time.perf_counter()
        preds = await self.model.classify(prepared.posts, prepared.images)
        m.INFERENCE_SECONDS.observe(time.perf_counter() - t1)
        written_at = now()
        results = [
            Result.from_prediction(
                post,
                pred,
                image_status=status,
                model_version=self.classifier.version,
                received_at=got,
                written_at=written_at,
            )
            for post, pred, status, got in zip(
                prepared.posts, preds, prepared.images.status, prepared.received, strict=True
            )
        ]
        fresh = await self._write(results)
        _count_written(results, fresh, now())
        report.posts = len(results)
        report.new = sum(fresh)
        report.duplicates = report.posts - report.new
        report.unclassifiable = sum(1 for r in results if not r.label)
        report.results = results
        report.seconds = time.perf_counter() - prepared.started
        m.BATCH_SECONDS.observe(report.seconds)
        return report

    # -- steps ----------------------------------------------------------------------------
    async def _decode_messages(self, messages: list[Message]) -> tuple[list[Post], list[datetime]]:
        """The valid posts (each id once) and when each was received."""
        posts: dict[str, Post] = {}
        received: dict[str, datetime] = {}
        started = now()
        for msg in messages:
            try:
                post = decode(msg.value)
            except RecordError as err:
                await self.dead_letter(msg.key, msg.value, err)
                m.DEAD_LETTERED.labels(err.reason).inc()
                continue
            posts[post.id] = post  # the same post twice in a batch: once
            received.setdefault(post.id, msg.received_at or started)
        return list(posts.values()), [received[i] for i in posts]

    async def _write(self, results: list[Result]) -> list[bool]:
        """One pipeline; while Redis is away the batch is held and the write retried."""

        def stalled(err: BaseException, delay: float) -> None:
            m.REDIS_ERRORS.inc()
            m.REDIS_STALLED.set(1)
            log.warning("redis write failed (%s); holding the batch, retry in %.1fs", err, delay)

        async def attempt() -> list[bool]:
            t0 = time.perf_counter()
            out = await self.store.write(results)
            m.REDIS_WRITE_SECONDS.observe(time.perf_counter() - t0)
            return out

        out = await retry_async(
            attempt, retry_on=REDIS_ERRORS, backoff=self.redis_backoff, on_retry=stalled
        )
        m.REDIS_STALLED.set(0)
        return out


def _count_written(results: list[Result], fresh: list[bool], done: datetime) -> None:
    """Metrics of a written batch; a re-delivered post counts as a duplicate only."""
    for r, new in zip(results, fresh, strict=True):
        if not new:
            m.DUPLICATES.inc()
            continue
        if r.label:
            m.CLASSIFIED.labels(r.source, "+".join(r.modalities)).inc()
            m.BY_EMOTION.labels(r.source, r.channel[:64], r.label).inc()
        else:
            m.UNCLASSIFIABLE.labels(r.image_status.removeprefix("error:")).inc()
        m.END_TO_END_SECONDS.observe(max(0.0, (done - r.ingested_at).total_seconds()))
        if r.received_at is not None:
            m.WORKER_SECONDS.observe(max(0.0, (done - r.received_at).total_seconds()))
