"""Pacing: calls spread at a fixed rate, from a blocking loop or from asyncio.

    pacer = Pacer(rate=50)          # posts/s; 0: as fast as possible
    for post in posts:
        send(post)
        pacer.wait()                # or: await pacer.wait_async()

The n-th call returns no earlier than start + n / rate, so short stalls are caught up and
the long-run rate is exact.
"""

from __future__ import annotations

import asyncio
import time


class Pacer:
    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.start = time.monotonic()
        self.n = 0

    def _ahead(self) -> float:
        """Seconds to wait before the next call (0: go now)."""
        self.n += 1
        if self.rate <= 0:
            return 0.0
        return max(0.0, self.start + self.n / self.rate - time.monotonic())

    def wait(self) -> None:
        ahead = self._ahead()
        if ahead > 0:
            time.sleep(ahead)

    async def wait_async(self) -> None:
        ahead = self._ahead()
        if ahead > 0:
            await asyncio.sleep(ahead)
