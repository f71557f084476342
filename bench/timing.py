"""How the benchmarks time a call."""

from __future__ import annotations

import time
from collections.abc import Callable


def rate(
    fn: Callable[[], object],
    items_per_call: int,
    seconds: float,
    sync: Callable[[], object] = lambda: None,
) -> float:
    """Items per second of ``fn``: one warm-up call, then calls for at least ``seconds``
    and at least two calls. ``sync`` waits for queued device work (CUDA) before reading
    the clock."""
    fn()
    sync()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or n < 2 * items_per_call:
        fn()
        n += items_per_call
    sync()
    return n / (time.perf_counter() - t0)
