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

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

SCHEMA_VERSION = 1
MAX_TEXT_CHARS = 40_000
"""Longer texts are refused (reason ``text_too_long``); the model reads ~256 tokens anyway."""
MAX_MESSAGE_BYTES = 1_000_000
MAX_DEPTH = 32
"""Deepest nesting of arrays and objects accepted in a message (a post needs 2: the record
and its ``meta``); deeper is refused (reason ``too_deep``) before the JSON is parsed."""
MAX_CHANNEL_CHARS = 100

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
    """Set by replays for the record; the worker never takes its namespace from a message
    (a replay's processor is built for its run, the live worker ignores the field)."""

    @property
    def has_text(self) -> bool:
        return bool(self.text and self.text.strip())


class RecordError(ValueError):
    """A message that is not a valid post. ``reason`` is a short, stable code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


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
    if not valid_channel(post.channel):
        raise RecordError("bad_channel", repr(post.channel[:80]))
    if post.text is not None and len(post.text) > MAX_TEXT_CHARS:
        raise RecordError("text_too_long", f"{len(post.text)} chars")
    if not post.has_text and not post.image_url:
        raise RecordError("empty_post", "neither text nor image_url")
    if post.image_url is not None and len(post.image_url) > 4096:
        raise RecordError("bad_image_url", "longer than 4096 characters")
    if post.created_at.tzinfo is None or post.ingested_at.tzinfo is None:
        raise RecordError("naive_timestamp", "timestamps need a UTC offset")
    return post


EARLIEST_CREATED_AT = datetime(2004, 1, 1, tzinfo=UTC)
"""No post of the sources is older (Flickr opened in 2004, Reddit in 2005)."""
CREATED_AHEAD = timedelta(days=1)
"""How far ahead of the worker's clock a ``created_at`` may lie (clocks, time zones)."""


def created_at_in_range(created_at: datetime, received: datetime) -> bool:
    return EARLIEST_CREATED_AT <= created_at <= received + CREATED_AHEAD


def bounded_created_at(post: Post, received: datetime) -> tuple[Post, str]:
    """A post whose ``created_at`` lies before EARLIEST_CREATED_AT or more than
    CREATED_AHEAD after ``received`` (the worker's clock; year 1, epoch 0 from a missing
    upload date, year 9999) is kept with ``created_at`` = its ``ingested_at`` (or
    ``received`` when that is out of range too); returns it and the value it came with
    ("" when in range), so that no post lands in a time bucket nobody looks at."""
    if created_at_in_range(post.created_at, received):
        return post, ""
    given = post.created_at.isoformat()
    ingested = post.ingested_at
    when = (
        ingested if created_at_in_range(ingested, received) and ingested <= received else received
    )
    return msgspec.structs.replace(post, created_at=when), given


def valid_channel(channel: str) -> bool:
    """At most MAX_CHANNEL_CHARS printable characters, without ``|`` (the separator of the
    count fields in Redis)."""
    return len(channel) <= MAX_CHANNEL_CHARS and channel.isprintable() and "|" not in channel


def decode(data: bytes | str | None) -> Post:
    """Bytes of one message -> a valid Post, or RecordError with a reason code.

    Any byte string gives one of the two: invalid UTF-8 is ``invalid_utf8``, nesting
    deeper than MAX_DEPTH is ``too_deep`` (checked before parsing).
    """
    if data is None:
        raise RecordError("empty_message")
    if len(data) > MAX_MESSAGE_BYTES:
        raise RecordError("message_too_large", f"{len(data)} bytes")
    if isinstance(data, str):
        try:
            data = data.encode()
        except UnicodeEncodeError as exc:
            raise RecordError("invalid_utf8", str(exc)[:200]) from exc
    if nested_deeper_than(data, MAX_DEPTH):
        raise RecordError("too_deep", f"nested deeper than {MAX_DEPTH}")
    version = _parse(data, _Version).v
    if version != SCHEMA_VERSION:
        raise RecordError("unknown_version", f"v={version}")
    return validate(_parse(data, Post))


def _parse(data: bytes, kind: type) -> Any:
    try:
        return msgspec.json.decode(data, type=kind)
    except msgspec.ValidationError as exc:  # (a subclass of DecodeError: first)
        raise RecordError("invalid_schema", str(exc)[:200]) from exc
    except msgspec.DecodeError as exc:
        raise RecordError("invalid_json", str(exc)[:200]) from exc
    except UnicodeDecodeError as exc:
        raise RecordError("invalid_utf8", str(exc)[:200]) from exc
    except RecursionError as exc:  # MAX_DEPTH keeps this away; a last line all the same
        raise RecordError("too_deep", "recursion limit") from exc


_STRUCTURE = re.compile(rb'[\[\]{}"\\]')


def nested_deeper_than(data: bytes, limit: int) -> bool:
    """Whether arrays and objects nest deeper than ``limit`` in JSON ``data`` (brackets
    inside strings do not count), without parsing it: one pass over brackets and quotes."""
    if data.count(b"[") + data.count(b"{") <= limit:
        return False  # fewer openers than the limit: nothing to scan
    depth = 0
    in_string, skip = False, -1
    for match in _STRUCTURE.finditer(data):
        pos = match.start()
        if pos == skip:  # the character after a backslash inside a string
            continue
        c = data[pos]
        if in_string:
            if c == 0x5C:  # backslash
                skip = pos + 1
            elif c == 0x22:  # quote
                in_string = False
        elif c == 0x22:
            in_string = True
        elif c in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


class _Version(msgspec.Struct):
    v: int
