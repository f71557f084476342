"""Failures pinned to the message that caused them: no single message can stop a partition.

A batch stage (the forward pass, the store write) that raises an unexpected exception is
run again on each half of the batch, and so on down to single messages
(:func:`bisect_failures`). What fails alone is the culprit: the worker dead-letters it
with reason ``internal_error`` and the exception's type, and the rest of the batch goes on.

What cannot be pinned to a message is not the message's fault: when every message of a
batch of two or more fails on its own too, the exception is raised again and the worker
exits (crash-only: a broken dependency or a bug, where a restart is the remedy, and
nothing unacknowledged is lost). Redis being away never reaches this code: the store write
retries it with back-off (``worker/pipeline.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

log = logging.getLogger("emostream.worker")

T = TypeVar("T")


class SystemicFailure(RuntimeError):
    """Every message of a batch failed, each on its own: not one message's fault."""


async def bisect_failures(
    rows: Sequence[int], run: Callable[[list[int]], Awaitable[list[T]]]
) -> tuple[dict[int, T], dict[int, Exception]]:
    """``run(rows)`` gives one result per row. Returns (results, failures) by row: on an
    exception each half is run again, down to single rows; a row that fails alone is a
    failure. Raises SystemicFailure when all of two or more rows fail alone."""
    results: dict[int, T] = {}
    failures: dict[int, Exception] = {}
    await _bisect(list(rows), run, results, failures)
    if len(rows) > 1 and len(failures) == len(rows):
        first = next(iter(failures.values()))
        raise SystemicFailure(f"all {len(rows)} messages failed alone: {first!r}") from first
    return results, failures


async def _bisect(rows: list[int], run, results: dict, failures: dict) -> None:
    try:
        out = await run(rows)
    except Exception as exc:  # noqa: BLE001 - the point: find which message it was
        if len(rows) == 1:
            log.error("message %d of the batch failed alone: %r", rows[0], exc, exc_info=exc)
            failures[rows[0]] = exc
            return
        half = len(rows) // 2
        await _bisect(rows[:half], run, results, failures)
        await _bisect(rows[half:], run, results, failures)
        return
    results.update(zip(rows, out, strict=True))


def describe(stage: str, exc: BaseException) -> str:
    """The dead letter's detail for a contained failure: stage, type and message."""
    return f"{stage}: {type(exc).__name__}: {exc}"[:500]
