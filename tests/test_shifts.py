"""The shift rule on count windows: a burst is flagged, noise and low volume are not."""

from __future__ import annotations

import random

from emostream.worker.api.shifts import ShiftRule, detect

RULE = ShiftRule()
MIX = {"joy": 0.5, "neutral": 0.25, "sadness": 0.1, "anger": 0.08, "fear": 0.04, "surprise": 0.03}


def draw(rng: random.Random, n: int, mix: dict[str, float]) -> dict[str, int]:
    out: dict[str, int] = {}
    for label in rng.choices(list(mix), weights=list(mix.values()), k=n):
        out[label] = out.get(label, 0) + 1
    return out


def steady(rng: random.Random, windows: int, mean_posts: int) -> list[dict[str, int]]:
    return [
        draw(rng, max(0, int(rng.gauss(mean_posts, mean_posts / 4))), MIX) for _ in range(windows)
    ]


def test_a_burst_of_fear_is_flagged_within_one_window():
    rng = random.Random(1)
    windows = steady(rng, 2 * RULE.baseline_windows, 60)
    windows.append(draw(rng, 60, {**MIX, "fear": 2.0}))  # fear: 4% -> about 60%
    found = detect(windows, RULE)
    assert set(found) == {"fear"}
    shift, back = found["fear"]
    assert shift.share > 0.4 and shift.baseline < 0.1 and shift.score >= RULE.min_score
    assert back == 0  # flagged since this window


def test_a_steady_channel_is_not_flagged():
    """Many windows of the same mix with sampling noise: the false-positive rate."""
    rng = random.Random(2)
    flagged = evaluated = 0
    for volume in (25, 60, 300):
        series = steady(rng, 400, volume)
        for end in range(2 * RULE.baseline_windows, len(series)):
            evaluated += 1
            flagged += bool(detect(series[: end + 1], RULE))
    print(f"\nsteady channels: {flagged} flags in {evaluated} windows")
    assert flagged / evaluated <= 0.005


def test_low_volume_is_never_flagged():
    rng = random.Random(3)
    windows = steady(rng, 2 * RULE.baseline_windows, 60)
    windows.append({"fear": RULE.min_posts - 1})  # every post fear, but too few
    assert detect(windows, RULE) == {}
    quiet = [{"joy": 1} for _ in range(2 * RULE.baseline_windows)] + [{"fear": 30}]
    assert detect(quiet, RULE) == {}  # too little baseline to compare with


def test_a_lasting_shift_reports_since_when():
    rng = random.Random(4)
    windows = steady(rng, 2 * RULE.baseline_windows, 100)
    windows += [draw(rng, 100, {**MIX, "anger": 3.0}) for _ in range(2)]
    shift, back = detect(windows, RULE)["anger"]
    assert back >= 1 and shift.share > 0.5
