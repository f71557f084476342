"""How many top labels each CPU runtime keeps of the fp32 reference, per test split.

    python -m bench.runtime_agreement [--reference onnx] [--runtimes onnx-int8 onnx-int8-image]

Classifies every post of every test split (text and picture bytes, as served) with the
reference runtime and with each other runtime, and prints, per split and runtime, the share
of posts whose top emotion and whose sentiment agree with the reference and the mean and
largest change of a class probability. Accuracy per split: ``python -m
bench.runtime_accuracy``. Writes bench/results/runtime_agreement.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tqdm import tqdm

from bench import REPO
from bench.machine import machine
from emostream.model.classifier import EmotionClassifier
from emostream.model.encoder import PostInput
from emostream.model.training.datasets import DATASETS, Dataset

BATCH = 32
TARGET = 0.98
"""Top-label agreement a runtime must keep on every split to be a default (issue target)."""


def posts_of(name: str, split: str) -> list[PostInput]:
    out = []
    for it in Dataset.load(name).split(split):
        image = it.image_path.read_bytes() if it.image_path and it.image_path.is_file() else None
        post = PostInput(it.text if it.has_text else None, image)
        if post.text or post.image:
            out.append(post)
    return out


def classify(clf: EmotionClassifier, posts: list[PostInput], desc: str) -> list:
    out = []
    for s in tqdm(range(0, len(posts), BATCH), desc=desc, leave=False):
        out += clf.classify(posts[s : s + BATCH])
    return out


def agreement(ref: list, other: list) -> dict:
    pairs = list(zip(ref, other, strict=True))
    changes = [abs(a.emotions[k] - b.emotions[k]) for a, b in pairs for k in a.emotions]
    changes += [abs(a.sentiments[k] - b.sentiments[k]) for a, b in pairs for k in a.sentiments]
    return {
        "posts": len(pairs),
        "emotion": sum(a.label == b.label for a, b in pairs) / len(pairs),
        "sentiment": sum(a.sentiment == b.sentiment for a, b in pairs) / len(pairs),
        "mean_prob_change": sum(changes) / len(changes),
        "max_prob_change": max(changes),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--reference", default="onnx")
    ap.add_argument("--runtimes", nargs="+", default=["onnx-int8", "onnx-int8-image"])
    ap.add_argument("--split", default="test")
    ap.add_argument("--json", type=Path, default=REPO / "bench/results/runtime_agreement.json")
    args = ap.parse_args()
    clfs = {
        rt: EmotionClassifier(device="cpu", runtime=rt) for rt in [args.reference, *args.runtimes]
    }
    table: dict = {}
    for name in DATASETS:
        posts = posts_of(name, args.split)
        ref = classify(clfs[args.reference], posts, f"{name} {args.reference}")
        for rt in args.runtimes:
            table[(name, rt)] = agreement(ref, classify(clfs[rt], posts, f"{name} {rt}"))
    ref_clf = clfs[args.reference]
    print(f"\nmodel {ref_clf.version}, reference {args.reference}, split {args.split}")
    print(
        "| split | runtime | posts | top emotion agrees | sentiment agrees "
        "| mean / max prob change |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for (name, rt), r in table.items():
        flag = "" if r["emotion"] >= TARGET else " (below 98%)"
        print(
            f"| {name} | {rt} | {r['posts']} | {r['emotion']:.1%}{flag} | {r['sentiment']:.1%} "
            f"| {r['mean_prob_change']:.4f} / {r['max_prob_change']:.3f} |"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "machine": machine("cpu"),
        "model_version": ref_clf.version,
        "reference": args.reference,
        "split": args.split,
        "agreement": {f"{n}/{rt}": r for (n, rt), r in table.items()},
    }
    args.json.write_text(json.dumps(doc, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
