"""One batch, end to end: decode -> fetch images -> decode images -> classify -> write.

The faust agent (``worker/app.py``) hands every batch it takes to
:meth:`BatchProcessor.process` and acknowledges the messages only after it returns, i.e.
after their results are in Redis (at-least-once; the store's writes are idempotent).

* A message that does not decode goes to the dead-letter sink with its reason code; one
  that makes the forward pass or the write fail on its own is found by bisection and
  dead-lettered as ``internal_error`` (``worker/containment.py``). The same post id twice
  in a batch: the first is kept (as across batches).
* The Redis namespace is the processor's (``run_id``: a replay's), never a message's.
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

from emostream.model import gpu_decode
from emostream.model.classifier import EmotionClassifier, Prediction
from emostream.record import Post, RecordError, bounded_created_at, decode, now
from emostream.retry import Backoff, retry_async

from . import metrics as m
from .address_guard import AddressGuard
from .batch_classifier import BatchClassifier
from .containment import bisect_failures, describe
from .feature_reuse import FeatureReuse
from .image_fetch import ImageFetcher
from .image_preparation import ImagePreparer, PreparedImages
from .settings import WorkerSettings
from .store import Result, ResultStore
from .store_faults import REDIS_ERRORS, StoreUnavailable, fault_kind, unavailable_kind

log = logging.getLogger("emostream.worker")

DeadLetter = Callable[[bytes | None, bytes | None, RecordError], Awaitable[None]]


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
    created_at_given: dict[str, str] = field(default_factory=dict)
    """Post id -> the ``created_at`` it came with, for posts whose own was out of range
    (``record.bounded_created_at``)."""
    messages: list[Message] = field(default_factory=list)
    """The message each post came from (dead-lettered if a later stage fails on it)."""
    repeated: int = 0
    """Messages whose post id came earlier in the batch (the first one is kept)."""


@dataclass
class BatchReport:
    posts: int = 0
    new: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    unclassifiable: int = 0
    not_read: int = 0
    """Posts not classified for their language (status unsupported_language)."""
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
        run_id: str | None = None,
    ) -> None:
        self.run_id = run_id
        """The replay run whose namespace the results go to; None: the live namespace.
        Set by whoever builds the processor, never by a message."""
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
        m.MODEL_INFO.info(
            {
                "version": classifier.version,
                "device": str(classifier.device),
                "runtime": classifier.encoder.runtime,
            }
        )

    @classmethod
    async def from_settings(
        cls, settings: WorkerSettings, dead_letter, run_id: str | None = None
    ) -> BatchProcessor:
        """The served model, image fetcher and Redis store as the settings say, warmed up;
        results go to ``run_id``'s namespace (default: the settings' run_id, else live)."""
        m.CHANNELS.limit = settings.metric_channels
        if settings.torch_threads:
            torch.set_num_threads(settings.torch_threads)
        device = None if settings.device == "auto" else settings.device
        classifier = EmotionClassifier(
            weights=_weights(settings.weights),
            device=device,
            precision=settings.precision,
            runtime=settings.runtime,
            unsupported_language=settings.unsupported_language,
        )
        enc = classifier.encoder
        enc.image_backbone = dataclasses.replace(
            enc.image_backbone,
            transform=dataclasses.replace(
                enc.transform,
                max_pixels=settings.image_max_pixels,
                max_side=settings.image_max_side,
                max_aspect=settings.image_max_aspect,
            ),
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
            ResultStore.from_settings(
                settings, shadow_version=classifier.version if settings.shadow else None
            ),
            dead_letter,
            decode_threads=settings.decode_threads,
            redis_retry_max_s=settings.redis_retry_max_s,
            reuse=FeatureReuse(settings.feature_reuse_size, settings.feature_reuse_ttl_s),
            gpu_decoder=(
                gpu_decode.GpuJpegDecoder(enc.transform, enc.device) if use_gpu_decode else None
            ),
            run_id=run_id or settings.run_id or None,
        )
        await processor.warm_up()  # load both encoders now, not in the first batch
        log.info(
            "emostream ready: model %s on %s (%s)",
            classifier.version,
            classifier.device,
            classifier.encoder.runtime,
        )
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
        kept, received, repeated = await self._decode_messages(messages)
        given: dict[str, str] = {}
        for i, (post, msg) in enumerate(kept):
            post, given[post.id] = bounded_created_at(post, received[i])
            kept[i] = (post, msg)
        given = {pid: value for pid, value in given.items() if value}
        m.CREATED_AT_REPLACED.inc(len(given))
        posts = [post for post, _ in kept]
        if posts:
            m.BATCH_SIZE.observe(len(posts))
        return Prepared(
            posts,
            await self._prepare_images(posts),
            dead_lettered=len(messages) - len(posts) - repeated,
            started=t0,
            received=received,
            created_at_given=given,
            messages=[msg for _, msg in kept],
            repeated=repeated,
        )

    async def complete(self, prepared: Prepared) -> BatchReport:
        """The compute half: one forward pass, one Redis pipeline (retried until written).
        A message that makes either fail on its own is dead-lettered (``containment.py``)."""
        report = BatchReport(dead_lettered=prepared.dead_lettered, duplicates=prepared.repeated)
        if not prepared.posts:
            return report
        t1 = time.perf_counter()
        rows = list(range(len(prepared.posts)))
        preds, failed = await bisect_failures(rows, lambda rs: self._classify(prepared, rs))
        m.INFERENCE_SECONDS.observe(time.perf_counter() - t1)
        await self._dead_letter_failures(prepared, failed, "classify")
        written_at = now()
        results = {i: self._result(prepared, i, preds[i], written_at) for i in preds}
        fresh, failed = await bisect_failures(
            list(results), lambda rs: self._write([results[i] for i in rs])
        )
        await self._dead_letter_failures(prepared, failed, "store")
        kept = [results[i] for i in fresh]
        _count_written(kept, list(fresh.values()), now())
        report.dead_lettered += len(rows) - len(kept)
        report.posts = len(kept)
        report.new = sum(fresh.values())
        report.duplicates += report.posts - report.new
        report.unclassifiable = sum(1 for r in kept if r.status == "unclassifiable")
        report.not_read = sum(1 for r in kept if r.status == "unsupported_language")
        report.results = kept
        report.seconds = time.perf_counter() - prepared.started
        m.BATCH_SECONDS.observe(report.seconds)
        return report

    # -- steps ----------------------------------------------------------------------------
    async def _decode_messages(
        self, messages: list[Message]
    ) -> tuple[list[tuple[Post, Message]], list[datetime], int]:
        """The valid posts with their messages, when each was received, and how many
        messages repeated an earlier post id of the batch (the first one wins, as it does
        across batches: the store keeps the first write per model version)."""
        kept: dict[str, tuple[Post, Message]] = {}
        received: list[datetime] = []
        repeated = 0
        started = now()
        for msg in messages:
            try:
                post = decode(msg.value)
            except RecordError as err:
                await self._send_dead_letter(msg, err)
                continue
            except Exception as exc:  # noqa: BLE001 - a decoder bug must not stop the partition
                log.error("decoding a message failed unexpectedly: %r", exc, exc_info=True)
                failure = RecordError("internal_error", describe("decode", exc))
                await self._send_dead_letter(msg, failure)
                continue
            if post.id in kept:
                repeated += 1
                m.DUPLICATES.inc()
                continue
            kept[post.id] = (post, msg)
            received.append(msg.received_at or started)
        return list(kept.values()), received, repeated

    async def _send_dead_letter(self, msg: Message, err: RecordError) -> None:
        await self.dead_letter(msg.key, msg.value, err)
        m.DEAD_LETTERED.labels(err.reason).inc()

    async def _dead_letter_failures(
        self, prepared: Prepared, failed: dict[int, Exception], stage: str
    ) -> None:
        for i, exc in failed.items():
            err = RecordError("internal_error", describe(stage, exc))
            await self._send_dead_letter(prepared.messages[i], err)

    async def _prepare_images(self, posts: list[Post]) -> PreparedImages:
        """The batch's pictures; if preparing them fails as a whole, the posts go on
        text-only with ``error:internal_error`` (no picture is worth a partition)."""
        if not posts:
            return PreparedImages.empty(0)
        try:
            return await self.images.prepare(posts)
        except Exception as exc:  # noqa: BLE001
            log.error("preparing a batch's images failed: %r", exc, exc_info=True)
            status = ["error:internal_error" if p.image_url else "absent" for p in posts]
            out = PreparedImages.empty(len(posts))
            out.status = status
            return out

    async def _classify(self, prepared: Prepared, rows: list[int]) -> list[Prediction | None]:
        posts = [prepared.posts[i] for i in rows]
        return await self.model.classify(posts, prepared.images.subset(rows))

    def _result(
        self, prepared: Prepared, i: int, pred: Prediction | None, written_at: datetime
    ) -> Result:
        return Result.from_prediction(
            prepared.posts[i],
            pred,
            image_status=prepared.images.status[i],
            model_version=self.classifier.version,
            received_at=prepared.received[i],
            written_at=written_at,
            run_id=self.run_id,
            created_at_given=prepared.created_at_given.get(prepared.posts[i].id, ""),
        )

    async def _write(self, results: list[Result]) -> list[bool]:
        """One pipeline; while Redis is away the batch is held and the write retried."""

        def stalled(err: BaseException, delay: float) -> None:
            m.REDIS_ERRORS.labels(fault_kind(err)).inc()
            m.REDIS_STALLED.set(1)
            log.warning("redis write failed (%s); holding the batch, retry in %.1fs", err, delay)

        async def attempt() -> list[bool]:
            t0 = time.perf_counter()
            try:
                out = await self.store.write(results)
            except redis.exceptions.RedisError as exc:
                kind = unavailable_kind(exc)
                if kind is None:
                    raise
                raise StoreUnavailable(kind, f"{type(exc).__name__}: {exc}") from exc
            m.REDIS_WRITE_SECONDS.observe(time.perf_counter() - t0)
            return out

        out = await retry_async(
            attempt, retry_on=REDIS_ERRORS, backoff=self.redis_backoff, on_retry=stalled
        )
        m.REDIS_STALLED.set(0)
        return out


def _weights(name: str):
    from emostream.model.weights import Weights

    try:
        return Weights[name]
    except KeyError:
        from emostream.settings import SettingError

        known = ", ".join(Weights.__members__)
        raise SettingError(f"EMOSTREAM_WEIGHTS={name!r} is not one of {known}") from None


MAX_LATENCY_S = 7 * 86400.0
"""An ingested_at further back than this (or in the future) is not a latency: the post's
own field was wrong or forged. Counted in LATENCY_OUT_OF_RANGE, not observed."""


def _count_written(results: list[Result], fresh: list[bool], done: datetime) -> None:
    """Metrics of a written batch; a re-delivered post counts as a duplicate only."""
    for r, new in zip(results, fresh, strict=True):
        if not new:
            m.DUPLICATES.inc()
            continue
        p = r.prediction
        if p.language:
            read = "yes" if p.status == "classified" and "text" in p.modalities else "no"
            m.BY_LANGUAGE.labels(m.LANGUAGES(p.language), read).inc()
        if p.status == "classified":
            m.CLASSIFIED.labels(r.source, "+".join(p.modalities)).inc()
            m.BY_EMOTION.labels(r.source, m.CHANNELS(r.channel), p.label).inc()
        elif p.status == "unclassifiable":
            m.UNCLASSIFIABLE.labels(p.image_status.removeprefix("error:")).inc()
        end_to_end = (done - r.ingested_at).total_seconds()
        if 0.0 <= end_to_end <= MAX_LATENCY_S:  # a forged ingested_at cannot move the metric
            m.END_TO_END_SECONDS.observe(end_to_end)
        else:
            m.LATENCY_OUT_OF_RANGE.inc()
        if r.received_at is not None:
            m.WORKER_SECONDS.observe(max(0.0, (done - r.received_at).total_seconds()))
