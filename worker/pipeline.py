"""One batch, end to end: decode -> fetch images -> decode images -> classify -> write.

The faust agent (``worker/app.py``) hands every batch it takes to
:meth:`BatchProcessor.process` and acknowledges the messages only after it returns, i.e.
after their results are in Redis (at-least-once; the store's writes are idempotent).

* A message that does not decode goes to the dead-letter sink with its reason code.
* Images are fetched concurrently within limits; decoding runs in a thread pool and the
  forward pass in a thread of its own, so the event loop stays free (heartbeats, fetches).
* A post whose image is absent or fails is classified on its text; a post with no text
  whose image fails is written as ``unclassifiable`` with the reason. No post is lost.
* If Redis is down, the batch is held and the write retried with back-off until it
  succeeds: no new batch is taken meanwhile (backpressure, bounded memory).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import redis.exceptions
import torch

from ingest.record import Post, RecordError, decode, now
from model.classifier import EmotionClassifier
from model.encoder import IMAGE, TEXT, EncodedBatch
from model.preprocessing import ImageDecodeError

from . import metrics as m
from .image_fetch import Fetched, ImageFetcher
from .store import Result, ResultStore

log = logging.getLogger("emostream.worker")

DeadLetter = Callable[[bytes | None, bytes | None, RecordError], Awaitable[None]]


@dataclass(frozen=True)
class Message:
    key: bytes | None
    value: bytes | None
    partition: int = 0
    offset: int = -1


@dataclass
class Prepared:
    """A batch whose records are decoded and images fetched and decoded."""

    posts: list[Post]
    pictures: list[torch.Tensor | None]
    status: list[str]
    dead_lettered: int
    started: float


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
    ) -> None:
        self.classifier = classifier
        self.fetcher = fetcher
        self.store = store
        self.dead_letter = dead_letter
        self.redis_retry_max_s = redis_retry_max_s
        self._decode_pool = ThreadPoolExecutor(decode_threads, thread_name_prefix="decode")
        self._model_pool = ThreadPoolExecutor(1, thread_name_prefix="model")
        m.MODEL_INFO.info({"version": classifier.version, "device": str(classifier.device)})

    def close(self) -> None:
        self._decode_pool.shutdown(wait=True)
        self._model_pool.shutdown(wait=True)

    # -- steps ----------------------------------------------------------------------------
    async def _decode_messages(self, messages: list[Message]) -> list[Post]:
        posts: dict[str, Post] = {}
        for msg in messages:
            try:
                post = decode(msg.value)
            except RecordError as err:
                await self.dead_letter(msg.key, msg.value, err)
                m.DEAD_LETTERED.labels(err.reason).inc()
                continue
            posts[post.id] = post  # the same post twice in a batch: once
        return list(posts.values())

    def _decode_image(self, data: bytes) -> torch.Tensor | ImageDecodeError:
        try:
            return self.classifier.encoder.decode(data)
        except ImageDecodeError as err:
            return err

    async def _images(self, posts: list[Post]) -> tuple[list[torch.Tensor | None], list[str]]:
        fetched: list[Fetched] = await self.fetcher.fetch_all([p.image_url for p in posts])
        for f in fetched:
            if f.status != "absent":
                m.IMAGE_FETCH_SECONDS.observe(f.seconds)
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        jobs = [
            loop.run_in_executor(self._decode_pool, self._decode_image, f.data) if f.data else None
            for f in fetched
        ]
        pictures: list[torch.Tensor | None] = []
        status: list[str] = []
        for f, job in zip(fetched, jobs, strict=True):
            if job is None:
                pictures.append(None)
                status.append(f.status)
                continue
            out = await job
            if isinstance(out, ImageDecodeError):
                pictures.append(None)
                status.append(f"error:{out.reason}")
            else:
                pictures.append(out)
                status.append("ok")
        m.DECODE_SECONDS.observe(time.perf_counter() - t0)
        for s in status:
            if s.startswith("error:"):
                m.IMAGE_FAILURES.labels(s.removeprefix("error:")).inc()
        return pictures, status

    def _classify(self, posts: list[Post], pictures: list[torch.Tensor | None], status):
        """Runs in the model thread: encoders + head, one pass for the batch."""
        enc = self.classifier.encoder
        n = len(posts)
        mask = torch.zeros(n, 2, dtype=torch.bool)
        text = torch.zeros(n, enc.text_backbone.dim)
        image = torch.zeros(n, enc.image_backbone.dim)
        t_rows = [i for i, p in enumerate(posts) if p.has_text]
        i_rows = [i for i, pic in enumerate(pictures) if pic is not None]
        if t_rows:
            text[t_rows] = enc.encode_texts([posts[i].text for i in t_rows])
            mask[t_rows, TEXT] = True
        if i_rows:
            image[i_rows] = enc.encode_images([pictures[i] for i in i_rows])
            mask[i_rows, IMAGE] = True
        return self.classifier.predict_encoded(EncodedBatch(text, image, mask, list(status)))

    async def _write(self, results: list[Result]) -> list[bool]:
        delay = 0.2
        while True:
            t0 = time.perf_counter()
            try:
                out = await self.store.write(results)
                m.REDIS_WRITE_SECONDS.observe(time.perf_counter() - t0)
                m.REDIS_STALLED.set(0)
                return out
            except (
                redis.exceptions.ConnectionError,
                redis.exceptions.TimeoutError,
                redis.exceptions.BusyLoadingError,
                OSError,
            ) as err:
                m.REDIS_ERRORS.inc()
                m.REDIS_STALLED.set(1)
                log.warning(
                    "redis write failed (%s); holding the batch, retry in %.1fs", err, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.redis_retry_max_s)

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
        posts = await self._decode_messages(messages)
        if not posts:
            return Prepared([], [], [], len(messages), t0)
        m.BATCH_SIZE.observe(len(posts))
        pictures, status = await self._images(posts)
        return Prepared(posts, pictures, status, len(messages) - len(posts), t0)

    async def complete(self, prepared: Prepared) -> BatchReport:
        """The compute half: one forward pass, one Redis pipeline (retried until written)."""
        report = BatchReport(dead_lettered=prepared.dead_lettered)
        posts, pictures, status = prepared.posts, prepared.pictures, prepared.status
        if not posts:
            return report
        t0 = prepared.started
        t1 = time.perf_counter()
        loop = asyncio.get_running_loop()
        preds = await loop.run_in_executor(
            self._model_pool, self._classify, posts, pictures, status
        )
        m.INFERENCE_SECONDS.observe(time.perf_counter() - t1)
        written_at = now()
        version = self.classifier.version
        results = []
        for post, pred, st in zip(posts, preds, status, strict=True):
            base = dict(
                id=post.id,
                source=post.source,
                channel=post.channel,
                created_at=post.created_at,
                ingested_at=post.ingested_at,
                written_at=written_at,
                image_status=st,
                model_version=version,
                run_id=post.run_id,
                text=(post.text or "")[:280],
            )
            if pred is None:  # no text and the image failed: written as unclassifiable
                scores = dict(label="", emotions={}, sentiment="", sentiments={}, modalities=())
            else:
                scores = dict(
                    label=pred.label,
                    emotions=pred.emotions,
                    sentiment=pred.sentiment,
                    sentiments=pred.sentiments,
                    modalities=pred.modalities,
                )
            results.append(Result(**scores, **base))
        fresh = await self._write(results)
        done = now()
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
        report.posts = len(results)
        report.new = sum(fresh)
        report.duplicates = report.posts - report.new
        report.unclassifiable = sum(1 for r in results if not r.label)
        report.results = results
        report.seconds = time.perf_counter() - t0
        m.BATCH_SECONDS.observe(report.seconds)
        return report
