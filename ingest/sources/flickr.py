"""Flickr photos through the REST API (httpx): by tags, or the recent feed.

Each photo gives title + description as text and the medium-size picture (``url_m``) as
image. Pages are walked newest first until photos already seen; calls are spaced to stay
under ``flickr_requests_per_hour``; HTTP 429/5xx and transport errors are retried with
back-off, and Flickr's own ``stat: fail`` answers raise :class:`FlickrError`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx

from emostream.record import Post, RecordError, make_post

from .. import metrics as m
from ..settings import IngestSettings, SettingError

log = logging.getLogger("emostream.ingest.flickr")
EXTRAS = "description,date_upload,owner_name,url_m,tags"


class FlickrError(RuntimeError):
    def __init__(self, code, message: str) -> None:
        super().__init__(f"Flickr error {code}: {message}")
        self.code = code


def post_of(photo: dict, channel: str) -> Post:
    title = (photo.get("title") or "").strip()
    desc = photo.get("description")
    desc = (desc.get("_content") if isinstance(desc, dict) else desc) or ""
    text = f"{title}\n\n{desc.strip()}".strip()
    owner = photo.get("owner") or ""
    return make_post(
        id=f"flickr:{photo['id']}",
        source="flickr",
        channel=channel,
        created_at=datetime.fromtimestamp(int(photo.get("dateupload") or 0), UTC),
        text=text or None,
        image_url=photo.get("url_m") or None,
        author=photo.get("ownername") or owner or None,
        permalink=f"https://www.flickr.com/photos/{owner}/{photo['id']}" if owner else None,
        meta={"tags": (photo.get("tags") or "")[:190]},
    )


class FlickrSource:
    def __init__(self, settings: IngestSettings, client: httpx.Client | None = None) -> None:
        if not settings.flickr_api_key:
            raise SettingError("Flickr needs EMOSTREAM_FLICKR_API_KEY (a Flickr API key)")
        self.settings = settings
        self.client = client or httpx.Client(timeout=20.0)
        self.min_interval = 3600.0 / max(1, settings.flickr_requests_per_hour)
        self._last_call = 0.0
        self.seen_upload = 0  # newest dateupload already emitted

    @property
    def channel(self) -> str:
        tags = self.settings.flickr_tags
        return "tag:" + ",".join(tags) if tags else "recent"

    def call(self, method: str, **params) -> dict:
        params = {
            "method": method,
            "api_key": self.settings.flickr_api_key,
            "format": "json",
            "nojsoncallback": 1,
            **params,
        }
        delay = 1.0
        for attempt in range(6):
            wait = self._last_call + self.min_interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last_call = time.monotonic()
            try:
                r = self.client.get(self.settings.flickr_api_url, params=params)
            except httpx.TransportError as exc:
                m.SOURCE_ERRORS.labels("flickr", "transport").inc()
                log.warning("flickr %s: %s (attempt %d)", method, exc, attempt + 1)
            else:
                if r.status_code == 429 or r.status_code >= 500:
                    m.SOURCE_ERRORS.labels("flickr", f"http_{r.status_code}").inc()
                    retry_after = r.headers.get("retry-after", "")
                    if retry_after.isdigit():
                        delay = max(delay, float(retry_after))
                else:
                    r.raise_for_status()
                    body = r.json()
                    if body.get("stat") != "ok":
                        m.SOURCE_ERRORS.labels("flickr", "api").inc()
                        raise FlickrError(body.get("code"), body.get("message", ""))
                    return body
            time.sleep(delay)
            delay = min(delay * 2, 60.0)
        raise FlickrError("retries", f"{method} failed 6 times")

    def page(self, page: int) -> dict:
        common = {"extras": EXTRAS, "per_page": self.settings.flickr_per_page, "page": page}
        if self.settings.flickr_tags:
            return self.call(
                "flickr.photos.search",
                tags=",".join(self.settings.flickr_tags),
                tag_mode="any",
                sort="date-posted-desc",
                content_type=1,
                **common,
            )
        return self.call("flickr.photos.getRecent", **common)

    def new_photos(self, max_pages: int = 10) -> Iterator[Post]:
        """Photos newer than the last call's newest, walking pages newest first."""
        newest = self.seen_upload
        for n in range(1, max_pages + 1):
            photos = self.page(n)["photos"]
            fresh = 0
            batch = photos.get("photo", [])
            for photo in batch:
                uploaded = int(photo.get("dateupload") or 0)
                if uploaded <= self.seen_upload:
                    continue
                fresh += 1
                newest = max(newest, uploaded)
                try:
                    yield post_of(photo, self.channel)
                except RecordError as err:
                    m.SKIPPED.labels("flickr", err.reason).inc()
            # newest first: a page that reached photos already seen is the last one needed
            if fresh < len(batch) or not batch or n >= int(photos.get("pages", 1)):
                break
        self.seen_upload = newest

    def stream(self) -> Iterator[Post]:
        while True:
            yield from self.new_photos()
            time.sleep(self.settings.flickr_poll_s)
