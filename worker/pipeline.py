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

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import redis.exceptions
import torch

from emostream.ingest.record import Post, RecordError, decode, now
from emostream.model.classifier import EmotionClassifier
from emostream.model.encoder import IMAGE, TEXT, EncodedBatch, PostInput
from emostream.model.gpu_decode import GpuJpegDecoder
from emostream.model.preprocessing import ImageDecodeError

from . import metrics as m
from .feature_reuse import FeatureReuse, digest
from .image_fetch import ImageFetcher
from .store import Result, ResultStore

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
    pictures: list[torch.Tensor | None]
    """The decoded picture of each post; None when absent, failed or its feature is reused."""
    status: list[str]
    dead_lettered: int
    started: float
    reused: dict[int, torch.Tensor] = field(default_factory=dict)
    """Image features taken from the reuse window, by post position."""
    image_keys: list[bytes | None] = field(default_factory=list)
    """A digest of each decoded picture's bytes (groups identical pictures)."""
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
        gpu_decoder: GpuJpegDecoder | None = None,
    ) -> None:
        self.classifier = classifier
        self.fetcher = fetcher
        self.store = store
        self.dead_letter = dead_letter
        self.redis_retry_max_s = redis_retry_max_s
        self.reuse = reuse if reuse is not None else FeatureReuse(size=0)
        self.gpu_decoder = gpu_decoder
        self._decode_pool = ThreadPoolExecutor(decode_threads, thread_name_prefix="decode")
        self._model_pool = ThreadPoolExecutor(1, thread_name_prefix="model")
        m.MODEL_INFO.info({"version": classifier.version, "device": str(classifier.device)})

    async def warm_up(self) -> None:
        """Load both encoders with one tiny batch, in the model thread.

        All torch work runs in that one thread: each thread that runs a parallel torch op
        on CPU gets an OpenMP team of its own, and idle teams spinning beside the busy one
        cost the model about a fifth of its speed on 2 cores (bench/cpu_contention.py)."""
        warm = PostInput("warm up", torch.zeros(3, 224, 224, dtype=torch.uint8))
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._model_pool, self.classifier.classify, [warm])

    def close(self) -> None:
        self._decode_pool.shutdown(wait=True)
        self._model_pool.shutdown(wait=True)

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

    def _decode_image(self, data: bytes) -> torch.Tensor | ImageDecodeError:
        try:
            return self.classifier.encoder.decode(data)
        except ImageDecodeError as err:
            return err

    async def _decode_images(self, blobs: list[bytes]) -> list[torch.Tensor | ImageDecodeError]:
        """Pillow in the decode pool, one picture per task; or one nvJPEG call on the GPU."""
        loop = asyncio.get_running_loop()
        if self.gpu_decoder is not None:
            return await loop.run_in_executor(
                self._decode_pool, self.gpu_decoder.decode_many, blobs
            )
        jobs = [loop.run_in_executor(self._decode_pool, self._decode_image, b) for b in blobs]
        return list(await asyncio.gather(*jobs))

    async def _images(self, posts: list[Post]) -> Prepared:
        """Fetch and decode each post's picture, unless its feature can be reused."""
        n = len(posts)
        prepared = Prepared(
            posts=posts,
            pictures=[None] * n,
            status=["absent"] * n,
            dead_lettered=0,
            started=0.0,
            image_keys=[None] * n,
        )
        # 1. a URL encoded recently: no fetch at all
        urls: list[str | None] = []
        for i, post in enumerate(posts):
            url = post.image_url
            feature = self.reuse.get("image_url", url) if url else None
            if feature is not None:
                prepared.reused[i] = feature
                prepared.status[i] = "ok"
                m.FEATURES_REUSED.labels("image_url").inc()
                url = None
            urls.append(url)
        # 2. fetch each distinct URL once
        distinct = list(dict.fromkeys(u for u in urls if u))
        fetched = dict(zip(distinct, await self.fetcher.fetch_all(distinct), strict=True))
        for f in fetched.values():
            m.IMAGE_FETCH_SECONDS.observe(f.seconds)
        # 3. identical bytes encoded recently: no decode; else decode each distinct picture once
        t0 = time.perf_counter()
        to_decode: dict[bytes, bytes] = {}
        for i, url in enumerate(urls):
            if url is None:
                continue
            f = fetched[url]
            if not f.data:
                prepared.status[i] = f.status
                continue
            key = digest(f.data)
            prepared.image_keys[i] = key
            feature = self.reuse.get("image_bytes", key)
            if feature is not None:
                prepared.reused[i] = feature
                prepared.status[i] = "ok"
                m.FEATURES_REUSED.labels("image_bytes").inc()
            else:
                to_decode.setdefault(key, f.data)
        decoded = dict(
            zip(to_decode, await self._decode_images(list(to_decode.values())), strict=True)
        )
        for i, key in enumerate(prepared.image_keys):
            if key is None or i in prepared.reused:
                continue
            out = decoded[key]
            if isinstance(out, ImageDecodeError):
                prepared.status[i] = f"error:{out.reason}"
            else:
                prepared.pictures[i] = out
                prepared.status[i] = "ok"
        if to_decode:
            m.DECODE_SECONDS.observe(time.perf_counter() - t0)
        for st in prepared.status:
            if st.startswith("error:"):
                m.IMAGE_FAILURES.labels(st.removeprefix("error:")).inc()
        return prepared

    def _text_features(self, posts: list[Post], rows: list[int]) -> torch.Tensor:
        """Features of ``posts[rows]``' texts: each distinct text encoded once, recent ones
        reused."""
        out = torch.zeros(len(rows), self.classifier.encoder.text_backbone.dim)
        todo: dict[bytes, list[int]] = {}
        for j, i in enumerate(rows):
            key = digest(posts[i].text)
            feature = self.reuse.get("text", key) if key not in todo else None
            if feature is not None:
                out[j] = feature
                m.FEATURES_REUSED.labels("text").inc()
            else:
                todo.setdefault(key, []).append(j)
        if todo:
            texts = [posts[rows[js[0]]].text for js in todo.values()]
            feats = self.classifier.encoder.encode_texts(texts)
            m.FEATURES_COMPUTED.labels("text").inc(len(texts))
            for (key, js), feature in zip(todo.items(), feats, strict=True):
                out[js] = feature
                self.reuse.put("text", key, feature)
                if len(js) > 1:
                    m.FEATURES_REUSED.labels("text").inc(len(js) - 1)
        return out

    def _image_features(self, prepared: Prepared) -> dict[int, torch.Tensor]:
        """Image features by post position: reused ones, then each distinct picture encoded
        once and remembered by its bytes and its URL."""
        feats = dict(prepared.reused)
        groups: dict[bytes, list[int]] = {}
        for i, pic in enumerate(prepared.pictures):
            if pic is not None:
                groups.setdefault(prepared.image_keys[i], []).append(i)
        if groups:
            pics = [prepared.pictures[rows[0]] for rows in groups.values()]
            encoded = self.classifier.encoder.encode_images(pics)
            m.FEATURES_COMPUTED.labels("image").inc(len(pics))
            for (key, rows), feature in zip(groups.items(), encoded, strict=True):
                self.reuse.put("image_bytes", key, feature)
                for i in rows:
                    feats[i] = feature
                    self.reuse.put("image_url", prepared.posts[i].image_url, feature)
                if len(rows) > 1:
                    m.FEATURES_REUSED.labels("image_bytes").inc(len(rows) - 1)
        return feats

    def _classify(self, prepared: Prepared):
        """Runs in the model thread: encoders + head, one pass for the batch."""
        enc = self.classifier.encoder
        posts = prepared.posts
        n = len(posts)
        mask = torch.zeros(n, 2, dtype=torch.bool)
        text = torch.zeros(n, enc.text_backbone.dim)
        image = torch.zeros(n, enc.image_backbone.dim)
        t_rows = [i for i, p in enumerate(posts) if p.has_text]
        if t_rows:
            text[t_rows] = self._text_features(posts, t_rows)
            mask[t_rows, TEXT] = True
        for i, feature in self._image_features(prepared).items():
            image[i] = feature
            mask[i, IMAGE] = True
        return self.classifier.predict_encoded(EncodedBatch(text, image, mask, prepared.status))

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
        posts, received = await self._decode_messages(messages)
        if not posts:
            return Prepared(
                posts=[], pictures=[], status=[], dead_lettered=len(messages), started=t0
            )
        m.BATCH_SIZE.observe(len(posts))
        prepared = await self._images(posts)
        prepared.dead_lettered = len(messages) - len(posts)
        prepared.started = t0
        prepared.received = received
        return prepared

    async def complete(self, prepared: Prepared) -> BatchReport:
        """The compute half: one forward pass, one Redis pipeline (retried until written)."""
        report = BatchReport(dead_lettered=prepared.dead_lettered)
        posts, status = prepared.posts, prepared.status
        if not posts:
            return report
        t0 = prepared.started
        t1 = time.perf_counter()
        loop = asyncio.get_running_loop()
        preds = await loop.run_in_executor(self._model_pool, self._classify, prepared)
        m.INFERENCE_SECONDS.observe(time.perf_counter() - t1)
        written_at = now()
        version = self.classifier.version
        results = []
        for post, pred, st, got in zip(posts, preds, status, prepared.received, strict=True):
            base = dict(
                received_at=got,
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
            m.WORKER_SECONDS.observe(max(0.0, (done - r.received_at).total_seconds()))
        report.posts = len(results)
        report.new = sum(fresh)
        report.duplicates = report.posts - report.new
        report.unclassifiable = sum(1 for r in results if not r.label)
        report.results = results
        report.seconds = time.perf_counter() - t0
        m.BATCH_SECONDS.observe(report.seconds)
        return report
