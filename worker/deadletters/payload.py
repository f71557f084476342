"""The dead letter's JSON: written by the worker (``sender``), read back by ``redrive``.

One message of the dead-letter topic holds the reason, the detail, the time, the original
key and the original bytes (base64, cut at ``DEAD_LETTER_ORIGINAL_BYTES``).
"""

from __future__ import annotations

import json
from base64 import b64decode, b64encode
from dataclasses import dataclass
from datetime import datetime

from emostream.record import RecordError, now

DEAD_LETTER_ORIGINAL_BYTES = 256 * 1024
"""The dead letter keeps at most this much of the original message (base64 in JSON), so a
huge message cannot make the dead letter itself too large to send."""


def dead_letter_payload(key: bytes | None, value: bytes | None, err: RecordError) -> bytes:
    """What the dead-letter topic receives: the reason and the original bytes (base64)."""
    value = value or b""
    return json.dumps(
        {
            "reason": err.reason,
            "detail": err.detail[:500],
            "at": now().isoformat(),
            "key": key[:1024].decode("utf-8", "replace") if key else None,
            "original_b64": b64encode(value[:DEAD_LETTER_ORIGINAL_BYTES]).decode(),
            "original_bytes": len(value),
            "original_truncated": len(value) > DEAD_LETTER_ORIGINAL_BYTES,
        }
    ).encode()


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    reason: str
    detail: str
    at: datetime | None
    key: bytes | None
    original: bytes
    truncated: bool

    @property
    def ref(self) -> str:
        """``partition:offset``, how the commands name a dead letter."""
        return f"{self.partition}:{self.offset}"

    @classmethod
    def from_record(cls, partition: int, offset: int, value: bytes) -> DeadLetter:
        try:
            d = json.loads(value)
            at = datetime.fromisoformat(d["at"]) if d.get("at") else None
            key = d["key"].encode() if d.get("key") is not None else None
            original = b64decode(d.get("original_b64") or "")
            return cls(
                partition,
                offset,
                d["reason"],
                d.get("detail", ""),
                at,
                key,
                original,
                bool(d.get("original_truncated")),
            )
        except (ValueError, KeyError, TypeError) as exc:  # not written by this worker
            return cls(
                partition, offset, "unreadable_dead_letter", str(exc), None, None, value, True
            )
