"""Retries with exponential back-off, for the dependencies a process cannot do without.

    await retry_async(lambda: store.write(results), retry_on=REDIS_ERRORS,
                      backoff=Backoff(first_s=0.2, max_s=10), on_retry=log_it)

``retry_async`` retries until the call succeeds (a worker holds its batch rather than lose
it: backpressure, bounded memory); ``on_retry(error, delay)`` is where callers count and log.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    first_s: float = 0.5
    """The first wait."""
    max_s: float = 10.0
    """No wait is longer than this."""
    factor: float = 2.0

    def delays(self) -> Iterator[float]:
        delay = self.first_s
        while True:
            yield delay
            delay = min(delay * self.factor, self.max_s)


async def retry_async(
    call: Callable[[], Awaitable[T]],
    *,
    retry_on: tuple[type[BaseException], ...],
    backoff: Backoff,
    on_retry: Callable[[BaseException, float], None] = lambda err, delay: None,
) -> T:
    """``await call()`` until it returns; errors of ``retry_on`` wait and try again."""
    for delay in backoff.delays():
        try:
            return await call()
        except retry_on as err:
            on_retry(err, delay)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover - delays() never ends


def retry(
    call: Callable[[], T],
    *,
    retry_on: tuple[type[BaseException], ...],
    backoff: Backoff,
    give_up_after_s: float = 0.0,
    on_retry: Callable[[BaseException, float], None] = lambda err, delay: None,
) -> T:
    """``call()`` until it returns, in this thread; errors of ``retry_on`` wait and try
    again, for ever or, with ``give_up_after_s`` > 0, until that long has passed (then
    the last error is raised)."""
    deadline = time.monotonic() + give_up_after_s
    for delay in backoff.delays():
        try:
            return call()
        except retry_on as err:
            if give_up_after_s > 0 and time.monotonic() + delay > deadline:
                raise
            on_retry(err, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover - delays() never ends
