"""The pictures of a batch: reuse what was encoded recently, fetch, decode.

Each step skips what it can (``worker/feature_reuse.py``):

1. a post whose image URL was encoded recently gets that feature: no fetch at all;
2. each distinct URL is fetched once (concurrently, within the fetcher's limits);
3. identical bytes encoded recently are reused; otherwise each distinct picture is
   decoded once, in a pool of threads with Pillow, or in one nvJPEG call on the GPU.

A picture that is absent or fails leaves its post text-only, its reason in ``status``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import torch

from emostream.model.gpu_decode import GpuJpegDecoder
from emostream.model.preprocessing import ImageDecodeError
from emostream.record import Post

from . import metrics as m
from .feature_reuse import FeatureReuse, digest
from .image_fetch import ImageFetcher

log = logging.getLogger("emostream.worker")


@dataclass
class PreparedImages:
    """Per post of a batch: its decoded picture or reused feature, and what happened."""

    pictures: list[torch.Tensor | None]
    """The decoded picture; None when absent, failed or its feature is reused."""
    status: list[str]
    """"ok", "absent" or "error:<reason>"."""
    image_keys: list[bytes | None]
    """A digest of each decoded picture's bytes (groups identical pictures)."""
    reused: dict[int, torch.Tensor] = field(default_factory=dict)
    """Image features taken from the reuse window, by post position."""

    @classmethod
    def empty(cls, n: int, status: str = "absent") -> PreparedImages:
        return cls([None] * n, [status] * n, [None] * n)

    def subset(self, rows: list[int]) -> PreparedImages:
        """The pictures of the posts at ``rows``, in that order."""
        position = {old: new for new, old in enumerate(rows)}
        return PreparedImages(
            [self.pictures[i] for i in rows],
            [self.status[i] for i in rows],
            [self.image_keys[i] for i in rows],
            {position[i]: f for i, f in self.reused.items() if i in position},
        )


class ImagePreparer:
    def __init__(
        self,
        decode: Callable[[bytes], torch.Tensor],
        fetcher: ImageFetcher,
        reuse: FeatureReuse,
        *,
        decode_threads: int = 2,
        gpu_decoder: GpuJpegDecoder | None = None,
    ) -> None:
        self.decode = decode
        """Image bytes -> uint8 (3, H, W); raises ImageDecodeError."""
        self.fetcher = fetcher
        self.reuse = reuse
        self.gpu_decoder = gpu_decoder
        self._pool = ThreadPoolExecutor(decode_threads, thread_name_prefix="decode")

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    async def prepare(self, posts: list[Post]) -> PreparedImages:
        out = PreparedImages.empty(len(posts))
        urls = self._reuse_by_url(posts, out)
        distinct = list(dict.fromkeys(u for u in urls if u))
        fetched = dict(zip(distinct, await self.fetcher.fetch_all(distinct), strict=True))
        for f in fetched.values():
            m.IMAGE_FETCH_SECONDS.observe(f.seconds)
        to_decode: dict[bytes, bytes] = {}
        for i, url in enumerate(urls):
            if url is not None:
                self._reuse_by_bytes(i, fetched[url], out, to_decode)
        await self._decode_distinct(to_decode, out)
        for st in out.status:
            if st.startswith("error:"):
                m.IMAGE_FAILURES.labels(st.removeprefix("error:")).inc()
        return out

    def _reuse_by_url(self, posts: list[Post], out: PreparedImages) -> list[str | None]:
        """Each post's URL still to fetch (None: no image, or its feature is reused)."""
        urls: list[str | None] = []
        for i, post in enumerate(posts):
            url = post.image_url
            feature = self.reuse.get("image_url", url) if url else None
            if feature is not None:
                out.reused[i], out.status[i] = feature, "ok"
                m.FEATURES_REUSED.labels("image_url").inc()
                url = None
            urls.append(url)
        return urls

    def _reuse_by_bytes(self, i: int, fetched, out: PreparedImages, to_decode: dict) -> None:
        if not fetched.data:
            out.status[i] = fetched.status
            return
        key = digest(fetched.data)
        out.image_keys[i] = key
        feature = self.reuse.get("image_bytes", key)
        if feature is not None:
            out.reused[i], out.status[i] = feature, "ok"
            m.FEATURES_REUSED.labels("image_bytes").inc()
        else:
            to_decode.setdefault(key, fetched.data)

    async def _decode_distinct(self, to_decode: dict[bytes, bytes], out: PreparedImages) -> None:
        if not to_decode:
            return
        t0 = time.perf_counter()
        decoded = dict(
            zip(to_decode, await self._decode_all(list(to_decode.values())), strict=True)
        )
        for i, key in enumerate(out.image_keys):
            if key is None or i in out.reused:
                continue
            result = decoded[key]
            if isinstance(result, ImageDecodeError):
                out.status[i] = f"error:{result.reason}"
            else:
                out.pictures[i], out.status[i] = result, "ok"
        m.DECODE_SECONDS.observe(time.perf_counter() - t0)

    def _decode_one(self, data: bytes) -> torch.Tensor | ImageDecodeError:
        try:
            return self.decode(data)
        except ImageDecodeError as err:
            return err
        except Exception as exc:  # noqa: BLE001 - a bug here costs one picture, not a batch
            log.error("image decode failed unexpectedly: %r", exc, exc_info=True)
            return ImageDecodeError(f"internal_error:{type(exc).__name__}", str(exc)[:200])

    async def _decode_all(self, blobs: list[bytes]) -> list[torch.Tensor | ImageDecodeError]:
        """Pillow in the decode pool, one picture per task; or one nvJPEG call on the GPU."""
        loop = asyncio.get_running_loop()
        if self.gpu_decoder is not None:
            return await loop.run_in_executor(self._pool, self.gpu_decoder.decode_many, blobs)
        jobs = [loop.run_in_executor(self._pool, self._decode_one, b) for b in blobs]
        return list(await asyncio.gather(*jobs))
