"""What reading a text costs before the encoder: emoji normalisation and language
detection, against the same classifier without them, side by side in one run.

    python -m bench.text_preparation [--seconds 5] [--rounds 3]

The served classifier (its default runtime) on GoEmotions test comments (text only, in
batches of 64) and on 128 mvsa-single test posts with their pictures (batches of 32,
pre-decoded), interleaved rounds, each cell its best. "without" switches off the
normaliser and replaces the detector with one that names every text English. Prints a
table and writes bench/results/text_preparation.json.
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial

from bench import REPO
from bench.machine import machine
from bench.timing import rate
from emostream.model.classifier import EmotionClassifier
from emostream.model.encoder import PostInput
from emostream.model.text_normalization import normalize
from emostream.model.training.datasets import Dataset


class _English:
    """The reference: no detection, every text English."""

    def detect(self, text: str) -> str:
        return "en"


def _conditions(clf: EmotionClassifier) -> dict[str, tuple[list[PostInput], int]]:
    items = Dataset.load("mvsa-single").split("test")[:128]
    pics = [clf.encoder.decode(i.image_path.read_bytes()) for i in items]
    comments = [i.text for i in Dataset.load("goemotions").split("test")[:1024]]
    return {
        "text": ([PostInput(t) for t in comments], 64),
        "both": ([PostInput(i.text, p) for i, p in zip(items, pics, strict=True)], 32),
    }


def _classify_all(clf: EmotionClassifier, posts: list[PostInput], batch: int) -> None:
    for i in range(0, len(posts), batch):
        clf.classify(posts[i : i + batch])


def _per_text_us(clf: EmotionClassifier, texts: list[str]) -> dict[str, float]:
    t0 = time.perf_counter()
    for t in texts:
        normalize(t)
    t1 = time.perf_counter()
    for t in texts:
        clf.encoder.languages.detect(t)
    t2 = time.perf_counter()
    return {"normalize_us": 1e6 * (t1 - t0) / len(texts), "detect_us": 1e6 * (t2 - t1) / len(texts)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", default=str(REPO / "bench/results/text_preparation.json"))
    args = ap.parse_args()
    served = EmotionClassifier(device="cpu")
    plain = EmotionClassifier(device="cpu")
    plain.encoder.normalization = None
    plain.encoder.languages = _English()
    clfs = {"with": served, "without": plain}
    conditions = _conditions(served)
    best: dict[str, float] = {}
    for rnd in range(args.rounds):
        for cond, (posts, batch) in conditions.items():
            for name, clf in clfs.items():
                key = f"{cond}/{name}"
                r = rate(partial(_classify_all, clf, posts, batch), len(posts), args.seconds)
                best[key] = max(best.get(key, 0.0), r)
        print(
            f"round {rnd + 1}/{args.rounds}: " + ", ".join(f"{k} {v:.0f}" for k, v in best.items())
        )
    steps = _per_text_us(served, [p.text or "" for p in conditions["text"][0]])
    print(f"\nmodel {served.version}, runtime {served.encoder.runtime}")
    print("| condition | batch | with (served) posts/s | without posts/s | cost with / without |")
    print("|---|---:|---:|---:|---:|")
    for cond, (_, batch) in conditions.items():
        w, wo = best[f"{cond}/with"], best[f"{cond}/without"]
        print(f"| {cond} | {batch} | {w:.1f} | {wo:.1f} | {wo / w:.3f}x |")
    print(f"per text: normalise {steps['normalize_us']:.0f} µs, detect {steps['detect_us']:.0f} µs")
    out = {
        "machine": machine("cpu"),
        "model_version": served.version,
        "posts_per_s": best,
        "per_text": steps,
        "settings": vars(args),
    }
    with open(args.json, "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
