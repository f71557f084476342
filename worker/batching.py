"""Adaptive batching: how many posts the next batch takes, and when it leaves.

Batching trades latency for throughput. On this pipeline a batch pays fixed costs (image
round trips, one Redis pipeline, acknowledgements) once, so large batches win when a
backlog is waiting; but a post that arrives into a quiet stream should not wait for a
batch of 32 to fill. :class:`BatchSizer` follows the backlog:

* **behind** (lag >= the current size): double the size, up to ``max_batch``;
* **caught up** (lag < half the size): halve it, down to ``min_batch``;
* **always** at most the largest batch whose latency fits the target: a post can wait
  ``max_wait_s`` for its batch, then for the batch ahead of it and its own to compute,
  so ``max_wait_s + 2 x compute(size) <= latency_target_s``, with ``compute(size)``
  estimated from the batches already done.

A batch leaves when it is full or ``max_wait_s`` after its first post arrived, less the
time a batch takes to prepare (records decoded, images fetched and decoded, smoothed over
the batches already prepared): a post's wait for its batch plus that batch's preparation
stays within ``max_wait_s``, so fetching pictures does not add to the latency bound.

:func:`adaptive_take` is faust's ``Stream.noack_take`` with two changes: the size is asked
of the sizer before every batch, and ``max_wait_s`` counts from the first post's
arrival, not from when the agent asks; posts keep arriving into the next batch while
the agent is busy with this one. As with ``noack_take``, nothing is acknowledged here:
the agent acknowledges after the write.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable

from . import metrics as m


class BatchSizer:
    def __init__(
        self,
        max_batch: int,
        *,
        min_batch: int = 1,
        max_wait_s: float = 0.5,
        latency_target_s: float = 2.0,
        adaptive: bool = True,
        smoothing: float = 0.3,
    ) -> None:
        if not 1 <= min_batch <= max_batch:
            raise ValueError(f"need 1 <= min_batch <= max_batch, got {min_batch}, {max_batch}")
        self.max_batch = max_batch
        self.min_batch = min_batch
        self.max_wait_s = max_wait_s
        self.latency_target_s = latency_target_s
        self.adaptive = adaptive
        self.smoothing = smoothing
        self.size = max_batch
        self.seconds_per_post: float | None = None
        """Smoothed compute seconds per post (model + write), from finished batches."""
        self.prepare_s: float | None = None
        """Smoothed seconds a batch takes to prepare (records, image fetch and decode)."""

    def observe(self, posts: int, seconds: float) -> None:
        """A batch of ``posts`` took ``seconds`` to compute and write."""
        if posts <= 0 or seconds < 0:
            return
        per_post = seconds / posts
        if self.seconds_per_post is None:
            self.seconds_per_post = per_post
        else:
            a = self.smoothing
            self.seconds_per_post = a * per_post + (1 - a) * self.seconds_per_post

    def observe_prepare(self, seconds: float) -> None:
        """A batch took ``seconds`` to prepare before it could be computed."""
        if seconds < 0:
            return
        if self.prepare_s is None:
            self.prepare_s = seconds
        else:
            a = self.smoothing
            self.prepare_s = a * seconds + (1 - a) * self.prepare_s

    def wait_s(self) -> float:
        """How long after its first post a batch that is not full leaves: ``max_wait_s``
        less the preparation time (adaptive only), never below 0."""
        if not self.adaptive or self.prepare_s is None:
            return self.max_wait_s
        return max(0.0, self.max_wait_s - self.prepare_s)

    def latency_cap(self) -> int:
        """The largest batch with ``max_wait_s + 2 x compute <= latency_target_s``."""
        if self.seconds_per_post is None or self.seconds_per_post <= 0:
            return self.max_batch
        budget = (self.latency_target_s - self.max_wait_s) / 2
        fits = math.floor(budget / self.seconds_per_post)
        return max(self.min_batch, min(self.max_batch, fits))

    def next_size(self, lag: int | None) -> int:
        """The size of the next batch, given ``lag`` posts waiting to be taken (None: not
        known yet, keep the size)."""
        if not self.adaptive:
            self.size = self.max_batch
        elif lag is None:
            pass
        elif lag >= self.size:
            self.size = min(self.size * 2, self.max_batch)
        elif lag < self.size // 2:
            self.size = max(self.size // 2, self.min_batch)
        if self.adaptive:
            self.size = min(self.size, self.latency_cap())
        m.BATCH_TARGET.set(self.size)
        return self.size


async def adaptive_take(stream, sizer: BatchSizer, lag: Callable[[], int]) -> AsyncIterator[list]:
    """Yield lists of events (not acknowledged) sized by ``sizer``; ``lag()`` counts the
    posts on the broker not yet fetched. Call as ``async for events in adaptive_take(...)``
    on a faust stream, in place of ``stream.noack_take(max, within)``."""
    loop = asyncio.get_running_loop()
    events: list = []
    arrivals: list[float] = []  # when each buffered event arrived
    target = sizer.next_size(None)
    arrived = asyncio.Event()  # the buffer holds at least one event
    full = asyncio.Event()  # the buffer holds ``target`` events
    room = asyncio.Event()  # the buffer has room again
    room.set()

    async def add_to_buffer(value):
        while len(events) >= target:  # never more than ``target`` per batch
            if stream.should_stop:
                return value  # stopping: left unacknowledged, delivered again later
            room.clear()
            await stream.wait(room)
        event = stream.current_event
        if event is None:
            raise RuntimeError("adaptive_take found current_event is None")
        events.append(event)
        arrivals.append(loop.time())
        arrived.set()
        if len(events) >= target:
            full.set()
        return value

    acks_before = stream.enable_acks
    stream.enable_acks = False  # the agent acknowledges after the write
    stream.add_processor(add_to_buffer)
    stream._enable_passive(aiter(stream.channel))
    try:
        while not stream.should_stop:
            behind = lag()
            target = sizer.next_size(None if behind is None else max(behind, len(events)))
            if len(events) >= target:
                full.set()
            else:
                full.clear()
            room.set()
            if not events:
                arrived.clear()
                await stream.wait_for_stopped(arrived, timeout=1.0)
                if not events:
                    continue
            remaining = arrivals[0] + sizer.wait_s() - loop.time()
            if len(events) < target and remaining > 0:
                await stream.wait_for_stopped(full, timeout=remaining)
            batch = events[:target]
            del events[:target], arrivals[:target]
            room.set()
            yield batch
    finally:
        stream.enable_acks = acks_before
        stream._processors.remove(add_to_buffer)
