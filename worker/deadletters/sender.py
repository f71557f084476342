"""The dead-letter topic: what could not be decoded, with its reason and original bytes."""

from __future__ import annotations

import logging

from emostream.record import RecordError
from emostream.retry import Backoff, retry_async
from emostream.worker import metrics as m
from emostream.worker.deadletters.payload import dead_letter_payload

log = logging.getLogger("emostream.worker")


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
