"""One Redis reader per feed stream, shared by every live feed on it.

Each open ``/api/feed`` used to hold a pooled Redis connection in a blocking XREAD, so a
few hundred browser tabs took the pool and ordinary requests failed. Now one task per
stream key reads it (XREAD, blocks of ``FEED_BLOCK_MS``) and hands every entry to each
subscriber's queue. A subscriber that resumes from an older id (``Last-Event-ID``) first
reads what it missed with XRANGE, up to where the shared reader started handing it
entries, so nothing is missed or sent twice. A subscriber whose queue fills (a client
that does not read) is ended: its browser reconnects with its Last-Event-ID and catches
up. A reader with no subscribers stops; Redis failing ends its subscribers (they
reconnect) and the next one starts a new reader.
"""

from __future__ import annotations

import asyncio
import logging

import redis.exceptions

log = logging.getLogger("emostream.api.feed")
QUEUE = 1000
"""Entries a subscriber may fall behind before it is ended (and reconnects)."""
CATCH_UP_PAGE = 200


class Ended(Exception):
    """The subscription ended (Redis failed, or the client fell QUEUE entries behind)."""


def _key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class Subscription:
    def __init__(self, hub: FeedHub, stream: str, last: str, start: str) -> None:
        self.hub, self.stream, self.last, self.start = hub, stream, last, start
        self.queue: asyncio.Queue = asyncio.Queue(QUEUE)
        self.ended: str | None = None
        self._backlog: list = []
        self._caught_up = _key(last) >= _key(start)

    async def next(self, timeout_s: float) -> tuple[str, dict] | None:
        """The next entry after ``last``, or None when none came within ``timeout_s``."""
        if not self._caught_up and not self._backlog:
            await self._catch_up()
        if self._backlog:
            return self._take(self._backlog.pop(0))
        while True:
            try:
                item = await asyncio.wait_for(self.queue.get(), timeout_s)
            except TimeoutError:
                return None
            if item is None:
                raise Ended(self.ended or "ended")
            if _key(item[0]) > _key(self.last):  # never an entry twice
                return self._take(item)

    def _take(self, item: tuple[str, dict]) -> tuple[str, dict]:
        self.last = item[0]
        return item

    async def _catch_up(self) -> None:
        """What came after ``last`` up to ``start`` (where the shared reader began handing
        this subscriber entries), a page at a time, from a pooled connection."""
        page = await self.hub.redis.xrange(
            self.stream, min=f"({self.last}", max=self.start, count=CATCH_UP_PAGE
        )
        self._backlog = list(page)
        if len(page) < CATCH_UP_PAGE:
            self._caught_up = True

    def deliver(self, item: tuple[str, dict] | None) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.end(f"fell {QUEUE} entries behind")

    def end(self, why: str) -> None:
        if self.ended is None:
            self.ended = why
            self.hub.unsubscribe(self)
            while True:  # room for the end marker
                try:
                    self.queue.put_nowait(None)
                    return
                except asyncio.QueueFull:
                    self.queue.get_nowait()


class _Reader:
    """The shared XREAD loop of one stream."""

    def __init__(self, hub: FeedHub, stream: str, position: str) -> None:
        self.hub, self.stream, self.position = hub, stream, position
        self.subscribers: set[Subscription] = set()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            while self.subscribers:
                got = await self.hub.redis.xread(
                    {self.stream: self.position}, block=self.hub.block_ms, count=500
                )
                for _, entries in got or ():
                    for item in entries:
                        self.position = item[0]
                        for sub in list(self.subscribers):
                            sub.deliver(item)
        except redis.exceptions.RedisError as exc:
            log.warning("feed reader of %s ended: %s", self.stream, exc)
            for sub in list(self.subscribers):
                sub.end(f"redis: {exc}")
        finally:
            if self.hub.readers.get(self.stream) is self:
                del self.hub.readers[self.stream]


class FeedHub:
    def __init__(self, redis_client, block_ms: int) -> None:
        self.redis, self.block_ms = redis_client, block_ms
        self.readers: dict[str, _Reader] = {}

    async def subscribe(self, stream: str, last: str) -> Subscription:
        """Entries of ``stream`` after ``last`` ("$": from now on)."""
        reader = self.readers.get(stream)
        if reader is None:
            newest = await self.redis.xrevrange(stream, count=1)
            position = newest[0][0] if newest else "0-0"
            reader = self.readers.get(stream)  # another subscriber may have started one
            if reader is None:
                reader = _Reader(self, stream, position)
                self.readers[stream] = reader
        last = reader.position if last == "$" else last
        sub = Subscription(self, stream, last, reader.position)
        reader.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        reader = self.readers.get(sub.stream)
        if reader is not None:
            reader.subscribers.discard(sub)

    async def close(self) -> None:
        for reader in list(self.readers.values()):
            for sub in list(reader.subscribers):
                sub.end("the API is stopping")
            reader.task.cancel()
