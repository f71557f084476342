"""Fetching post images from the open internet, within limits.

Each hop of a fetch (the URL and every redirect) goes through the :class:`AddressGuard`
and connects to the address that was checked. A fetch is cut off by a byte cap, a time
cap (whole fetch, redirects included) and a redirect cap, and only ``image/*`` content is
accepted. Any failure is a :class:`FetchRefused` with a reason code; the worker then
classifies the post on its text and records the reason.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urljoin

import httpx

from .address_guard import AddressGuard, FetchRefused

log = logging.getLogger("emostream.worker")

REDIRECTS = (301, 302, 303, 307, 308)


@dataclass(frozen=True)
class Fetched:
    data: bytes | None
    status: str  # "ok", "absent" or "error:<reason>"
    seconds: float


class ImageFetcher:
    def __init__(
        self,
        guard: AddressGuard,
        *,
        max_bytes: int = 10 * 1024 * 1024,
        timeout_s: float = 5.0,
        max_redirects: int = 3,
        concurrency: int = 16,
        user_agent: str = "emostream-image-fetch/0.1",
    ) -> None:
        self.guard = guard
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.max_redirects = max_redirects
        self.user_agent = user_agent
        self._sem = asyncio.Semaphore(concurrency)
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=False,
            trust_env=False,  # no proxies from the environment: we check every address
            limits=httpx.Limits(max_connections=concurrency * 2),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def fetch(self, url: str) -> bytes:
        """The image bytes, or FetchRefused."""
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self._fetch(url)
        except TimeoutError as exc:
            raise FetchRefused("timeout", f"over {self.timeout_s}s") from exc
        except httpx.HTTPError as exc:
            raise FetchRefused("http_error", type(exc).__name__) from exc

    async def _fetch(self, url: str) -> bytes:
        for _ in range(self.max_redirects + 1):
            target = self.guard.parse(url)
            addr = (await self.guard.resolve(target))[0]
            host = f"[{addr}]" if isinstance(addr, ipaddress.IPv6Address) else str(addr)
            default = 443 if target.scheme == "https" else 80
            host_header = target.host if target.port == default else f"{target.host}:{target.port}"
            extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
            request = self._client.build_request(
                "GET",
                f"{target.scheme}://{host}:{target.port}{target.path}",
                headers={"Host": host_header, "User-Agent": self.user_agent, "Accept": "image/*"},
                extensions=extensions,
            )
            response = await self._client.send(request, stream=True)
            try:
                if response.status_code in REDIRECTS:
                    location = response.headers.get("location")
                    if not location:
                        raise FetchRefused(
                            "http_status", f"{response.status_code} without Location"
                        )
                    url = urljoin(url, location)
                    continue
                if response.status_code != 200:
                    raise FetchRefused("http_status", str(response.status_code))
                ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
                if not ctype.startswith("image/"):
                    raise FetchRefused("content_type", ctype or "(none)")
                length = response.headers.get("content-length")
                if length and length.isdigit() and int(length) > self.max_bytes:
                    raise FetchRefused("too_large", f"{length} bytes")
                buf = bytearray()
                async for chunk in response.aiter_bytes():
                    buf += chunk
                    if len(buf) > self.max_bytes:
                        raise FetchRefused("too_large", f"over {self.max_bytes} bytes")
                if not buf:
                    raise FetchRefused("empty_body", "200 with no bytes")
                return bytes(buf)
            finally:
                await response.aclose()
        raise FetchRefused("redirects", f"more than {self.max_redirects}")

    async def fetch_one(self, url: str | None) -> Fetched:
        if not url:
            return Fetched(None, "absent", 0.0)
        t0 = time.perf_counter()
        async with self._sem:
            try:
                data = await self.fetch(url)
                return Fetched(data, "ok", time.perf_counter() - t0)
            except FetchRefused as exc:
                return Fetched(None, f"error:{exc.reason}", time.perf_counter() - t0)
            except Exception as exc:  # noqa: BLE001 - a bug here costs one picture, not a batch
                log.error("image fetch failed unexpectedly: %r", exc, exc_info=True)
                reason = f"internal_error:{type(exc).__name__}"
                return Fetched(None, f"error:{reason}", time.perf_counter() - t0)

    async def fetch_all(self, urls: Sequence[str | None]) -> list[Fetched]:
        return list(await asyncio.gather(*(self.fetch_one(u) for u in urls)))
