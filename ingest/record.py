"""The wire record: one JSON object per Kafka message, keyed by post id, schema-versioned.

    {"v": 1, "id": "reddit:t3_abc", "source": "reddit", "channel": "r/happy",
     "created_at": "2026-11-24T08:00:00Z", "ingested_at": "2026-11-24T08:00:01.5Z",
     "text": "...", "image_url": "https://..." | null, "author": "...",
     "permalink": "...", "meta": {...}}

The ingest side owns it; the worker imports :func:`decode`. Decoding is strict (msgspec):
unknown versions, wrong types, missing fields and posts with neither text nor an image
URL are refused with a :class:`RecordError` whose ``reason`` is a short code for the
dead-letter topic and the metrics.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

SCHEMA_VERSION = 1
MAX_TEXT_CHARS = 40_000
"""Longer texts are refused (reason ``text_too_long``); the model reads ~256 tokens anyway."""
MAX_MESSAGE_BYTES = 1_000_000

SOURCES = ("reddit", "flickr", "twitter", "replay", "other")


class Post(msgspec.Struct, frozen=True, forbid_unknown_fields=False, kw_only=True):
    v: int
    id: str
    source: str
    channel: str = ""
    created_at: datetime
    ingested_at: datetime
    text: str | None = None
    image_url: str | None = None
    author: str | None = None
    permalink: str | None = None
    meta: dict[str, str | int | float | bool | None] = {}
    run_id: str | None = None
    """Set by replays: results land under their own Redis namespace."""

    @property
    def has_text(self) -> bool:
        return bool(self.text and self.text.strip())


class RecordError(ValueError):
    """A message that is not a valid post. ``reason`` is a short, stable code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


_decoder = msgspec.json.Decoder(Post)
_encoder = msgspec.json.Encoder()


def now() -> datetime:
    return datetime.now(UTC)


def make_post(
    *,
    id: str,
    source: str,
    created_at: datetime,
    text: str | None = None,
    image_url: str | None = None,
    channel: str = "",
    author: str | None = None,
    permalink: str | None = None,
    meta: dict | None = None,
    run_id: str | None = None,
    ingested_at: datetime | None = None,
) -> Post:
    """Build and validate a post (same checks as :func:`decode`)."""
    post = Post(
        v=SCHEMA_VERSION,
        id=id,
        source=source,
        channel=channel,
        created_at=_aware(created_at),
        ingested_at=_aware(ingested_at or now()),
        text=text,
        image_url=image_url,
        author=author,
        permalink=permalink,
        meta=meta or {},
        run_id=run_id,
    )
    validate(post)
    return post


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def encode(post: Post) -> bytes:
    return _encoder.encode(post)


def key(post: Post) -> bytes:
    return post.id.encode()


def validate(post: Post) -> Post:
    if post.v != SCHEMA_VERSION:
        raise RecordError("unknown_version", f"v={post.v}")
    if not post.id or len(post.id) > 256 or not post.id.isprintable():
        raise RecordError("bad_id", repr(post.id[:80]))
    if post.source not in SOURCES:
        raise RecordError("bad_source", repr(post.source[:40]))
    if post.text is not None and len(post.text) > MAX_TEXT_CHARS:
        raise RecordError("text_too_long", f"{len(post.text)} chars")
    if not post.has_text and not post.image_url:
        raise RecordError("empty_post", "neither text nor image_url")
    if post.image_url is not None and len(post.image_url) > 4096:
        raise RecordError("bad_image_url", "longer than 4096 characters")
    if post.created_at.tzinfo is None or post.ingested_at.tzinfo is None:
        raise RecordError("naive_timestamp", "timestamps need a UTC offset")
    return post


def decode(data: bytes | str | None) -> Post:
    """Bytes of one message -> a valid Post, or RecordError with a reason code."""
    if data is None:
        raise RecordError("empty_message")
    if len(data) > MAX_MESSAGE_BYTES:
        raise RecordError("message_too_large", f"{len(data)} bytes")
    try:
        version = msgspec.json.decode(data, type=_Version).v
    except msgspec.ValidationError as exc:  # (a subclass of DecodeError: first)
        raise RecordError("invalid_schema", str(exc)[:200]) from exc
    except msgspec.DecodeError as exc:
        raise RecordError("invalid_json", str(exc)[:200]) from exc
    if version != SCHEMA_VERSION:
        raise RecordError("unknown_version", f"v={version}")
    try:
        post = _decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise RecordError("invalid_schema", str(exc)[:200]) from exc
    except msgspec.DecodeError as exc:
        raise RecordError("invalid_json", str(exc)[:200]) from exc
    return validate(post)


class _Version(msgspec.Struct):
    v: int
