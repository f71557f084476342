"""Emotion shifts: each channel's mix of emotions now, against that channel's own past.

Computed from the per-minute counts the worker already keeps in Redis (``store.py``), not
from a second pipeline. For one channel, the counts are summed into windows of
``window_s`` seconds; the last window is "now", the ``baseline_windows`` before it are the
baseline. For each label (the emotions, neutral included, and the sentiments):

* ``share`` is the label's share of the posts of the current window;
* ``baseline`` is an exponentially weighted mean of its share over the baseline windows
  (recent windows weigh more; empty windows are skipped), with its weighted variance;
* ``score`` is a z-score: (share - baseline) / sqrt(baseline variance + the sampling
  variance of a share of n posts, baseline (1 - baseline) / n). The second term keeps a
  quiet channel from being flagged on a handful of posts.

A label is flagged when the current window has at least ``min_posts`` posts, the baseline
has at least ``min_baseline_posts``, the score is at least ``min_score`` and the share
rose by at least ``min_rise``. ``since`` is the start of the earliest window of the
unbroken run of flagged windows that ends now.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ShiftRule:
    window_s: int = 600
    baseline_windows: int = 12
    min_posts: int = 20
    min_baseline_posts: int = 60
    min_score: float = 4.0
    min_rise: float = 0.15
    decay: float = 0.8
    """Weight of each older baseline window relative to the next newer one."""
    guard_windows: int = 2
    """Windows right before the current one left out of its baseline."""


@dataclass(frozen=True)
class Shift:
    label: str
    share: float
    baseline: float
    score: float
    posts: int
    """Posts of the channel in the current window."""


def shares_score(
    history: list[dict[str, int]], now: dict[str, int], rule: ShiftRule
) -> list[Shift]:
    """The flagged labels of one channel: ``history`` oldest first, ``now`` the current
    window (label -> posts)."""
    n = sum(now.values())
    past = [w for w in history if sum(w.values()) > 0]
    if n < rule.min_posts or sum(sum(w.values()) for w in past) < rule.min_baseline_posts:
        return []
    weights = [rule.decay ** (len(past) - 1 - i) for i in range(len(past))]
    total_w = sum(weights)
    out = []
    for label in sorted({k for w in past for k in w} | set(now)):
        shares = [w.get(label, 0) / sum(w.values()) for w in past]
        mean = sum(wt * s for wt, s in zip(weights, shares, strict=True)) / total_w
        var = sum(wt * (s - mean) ** 2 for wt, s in zip(weights, shares, strict=True)) / total_w
        share = now.get(label, 0) / n
        sampling = max(mean * (1 - mean), 1.0 / n) / n
        score = (share - mean) / math.sqrt(var + sampling)
        if score >= rule.min_score and share - mean >= rule.min_rise:
            out.append(Shift(label, share, mean, score, n))
    return out


def detect(windows: list[dict[str, int]], rule: ShiftRule) -> dict[str, tuple[Shift, int]]:
    """Flagged labels of one channel now, with how many windows back (0: only the current
    one) each has been flagged without a break. ``windows``: oldest first, the last is now."""
    span = rule.baseline_windows + rule.guard_windows

    def flagged_at(end: int) -> dict[str, Shift]:
        history = windows[max(0, end - span) : max(0, end - rule.guard_windows)]
        return {s.label: s for s in shares_score(history, windows[end], rule)}

    last = len(windows) - 1
    out = {}
    for label, shift in flagged_at(last).items():
        back = 0
        while last - back - 1 >= span and label in flagged_at(last - back - 1):
            back += 1
        out[label] = (shift, back)
    return out
