"""The dead-letter topic: what could not be decoded, with its reason and original bytes."""

from __future__ import annotations

import json
import logging
from base64 import b64encode

from emostream.ingest.record import RecordError, now
from emostream.retry import Backoff, retry_async

from . import metrics as m

log = logging.getLogger("emostream.worker")

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


class DeadLetterSender:
    """Sends a dead letter and waits for the broker's ack, retrying while Kafka refuses it;
    the worker calls it before it acknowledges the original message."""

    def __init__(self, topic, max_delay_s: float) -> None:
        self.topic = topic
        """A faust topic (anything with ``async send(key=, value=)`` returning a future)."""
        self.backoff = Backoff(first_s=0.5, max_s=max_delay_s)

    async def __call__(self, key: bytes | None, value: bytes | None, err: RecordError) -> None:
        payload = dead_letter_payload(key, value, err)
        short_key = key[:1024] if key else key

        async def send() -> None:
            fut = await self.topic.send(key=short_key, value=payload)
            await fut

        def refused(exc: BaseException, delay: float) -> None:
            m.DEAD_LETTER_ERRORS.inc()
            log.warning("dead letter not delivered (%s); retry in %.1fs", exc, delay)

        await retry_async(send, retry_on=(Exception,), backoff=self.backoff, on_retry=refused)
