"""The emotion shifts of every channel at a moment, read from the counts in Redis.

``shift_report`` sums the per-minute count buckets (``{p}:counts:{version}:{bucket}``) into
windows per (source, channel), runs ``shifts.detect`` on the emotions and on the
sentiments of each, and adds a few example posts of each flagged label from the feed.
The dashboard API serves it (``/api/shifts``) and turns it into Prometheus gauges.
"""

from __future__ import annotations

import time
from collections import defaultdict

from emostream.worker.api.shifts import ShiftRule, detect
from emostream.worker.store import SENTIMENT_MARK, Keys

EXAMPLES = 3
FEED_SCAN = 20_000
"""Newest feed entries searched for examples at most (in pages of 1,000, until found)."""


async def count_windows(r, keys: Keys, version: str, rule: ShiftRule, bucket_s: int, at: int):
    """(source, channel) -> windows oldest first, each label -> posts; the last window ends
    at ``at``. Two baselines' worth of windows, so how long a shift lasts can be found."""
    n_windows = 2 * (rule.baseline_windows + rule.guard_windows) + 1
    start = at - n_windows * rule.window_s
    buckets = list(range(start, at, bucket_s))
    pipe = r.pipeline(transaction=False)
    for b in buckets:
        pipe.hgetall(keys.counts(version, b))
    series: dict[tuple[str, str], list[dict[str, int]]] = defaultdict(
        lambda: [{} for _ in range(n_windows)]
    )
    for b, counts in zip(buckets, await pipe.execute(), strict=True):
        w = (b - start) // rule.window_s
        for field, n in counts.items():
            if field.count("|") < 2:
                continue
            source, channel, label = field.rsplit("|", 2)
            window = series[(source, channel)][w]
            window[label] = window.get(label, 0) + int(n)
    return series


async def shift_report(
    r, keys: Keys, version: str, rule: ShiftRule, bucket_s: int, at: int | None = None
) -> list[dict]:
    """Every flagged (source, channel, label) at ``at`` (default: now), strongest first."""
    now = int(time.time())
    at = (at if at is not None else now) // bucket_s * bucket_s
    series = await count_windows(r, keys, version, rule, bucket_s, at)
    out = []
    for (source, channel), windows in series.items():
        for kind, pick in (("emotion", False), ("sentiment", True)):
            part = [
                {k.removeprefix(SENTIMENT_MARK): v for k, v in w.items()
                 if k.startswith(SENTIMENT_MARK) == pick}
                for w in windows
            ]  # fmt: skip
            for label, (shift, back) in detect(part, rule).items():
                out.append({
                    "source": source, "channel": channel, "kind": kind, "label": label,
                    "share": round(shift.share, 4), "baseline": round(shift.baseline, 4),
                    "score": round(shift.score, 2), "posts": shift.posts,
                    "window_s": rule.window_s, "since": at - (back + 1) * rule.window_s,
                    "examples": [],
                })  # fmt: skip
    out.sort(key=lambda s: -s["score"])
    if out and at >= now - rule.window_s:
        await _add_examples(r, keys, out)
    return out


async def _add_examples(r, keys: Keys, shifts: list[dict]) -> None:
    wanted = {(s["source"], s["channel"], s["kind"], s["label"]): s for s in shifts}
    cursor, scanned = "+", 0
    while scanned < FEED_SCAN and any(len(s["examples"]) < EXAMPLES for s in shifts):
        page = await r.xrevrange(keys.feed(), max=cursor, count=1000)
        for _, fields in page:
            for kind, field in (("emotion", "label"), ("sentiment", "sentiment")):
                key = (fields.get("source"), fields.get("channel"), kind, fields.get(field))
                s = wanted.get(key)
                if s is not None and len(s["examples"]) < EXAMPLES:
                    s["examples"].append({"id": fields["id"], "text": fields.get("text", "")[:140]})
        if len(page) < 1000:
            break
        scanned += len(page)
        cursor = "(" + page[-1][0]  # exclusive: older than the last entry read
