"""Which weight matrices of the text encoder cost top labels in int8, and what keeping them
fp32 buys back: per-layer sensitivity, then recipes, against fp32, in one run.

    python -m bench.text_int8_layers [--limit 600] [--seconds 5] [--rounds 3]

Sensitivity: each group of MatMuls (per MiniLM layer: query/key/value, the attention
output, the feed-forward input and output) is quantized to int8 alone, the rest fp32, and
the served classifier's top emotion and sentiment are compared with fp32 ONNX Runtime on
the texts of every validation split (the selection never sees a test text). Recipes: all
int8, q2 (the shipped ``onnx-int8``: every feed-forward output fp32) and "the k most
sensitive groups fp32" for a few k; each gets its agreement per validation split and its
text posts/s (1,024 GoEmotions test comments in batches of 64, interleaved with fp32,
best of rounds). Writes bench/results/text_int8_layers.json and a PNG of the sensitivity.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from bench import REPO
from bench.machine import machine
from bench.timing import rate
from emostream.model.classifier import EmotionClassifier
from emostream.model.encoder import PostInput
from emostream.model.onnx_runtime import (
    INT8_RECIPE,
    _quantize_int8,
    kept_fp32,
    onnx_dir,
    text_matmuls,
)
from emostream.model.training.datasets import Dataset

DATASETS = ("reddit-emotions", "flickr-fi-text", "goemotions", "mvsa-single", "twitter-ii")
PARTS = {
    "qkv": r"/attention/self/(query|key|value)/",
    "attn-out": r"/attention/output/dense/",
    "ffn-in": r"/intermediate/dense/",
    "ffn-out": r"^(?!.*/attention/).*/output/dense/",
}
BATCH = 64
KS = (2, 4, 6, 8)


def group_of(name: str) -> str | None:
    """``layer.3/ffn-out`` for a weight MatMul of the export, None for the others."""
    layer = re.search(r"/layer\.(\d+)/", name)
    for part, pattern in PARTS.items():
        if layer and re.search(pattern, name):
            return f"layer.{layer.group(1)}/{part}"
    return None


@contextlib.contextmanager
def int8_classifier(fp32: Path, version: str, keep: Callable[[str], bool]):
    """``EmotionClassifier(runtime="onnx-int8")`` whose text int8 file keeps ``keep``'s
    MatMuls fp32 (an ONNX folder of its own: the shipped recipe's files are not touched)."""
    with tempfile.TemporaryDirectory() as tmp:
        for f in onnx_dir().glob("*.fp32.onnx"):
            (Path(tmp) / f.name).symlink_to(f)
        _quantize_int8(fp32, Path(tmp) / f"{version}.int8-{INT8_RECIPE}.onnx", keep)
        before = os.environ.get("EMOSTREAM_ONNX_DIR")
        os.environ["EMOSTREAM_ONNX_DIR"] = tmp
        try:
            clf = EmotionClassifier(device="cpu", runtime="onnx-int8")
            clf.classify([PostInput("warm up", None)])  # the session opens here
            yield clf
        finally:
            if before is None:
                os.environ.pop("EMOSTREAM_ONNX_DIR")
            else:
                os.environ["EMOSTREAM_ONNX_DIR"] = before


def labels(clf: EmotionClassifier, texts: list[str]) -> list[tuple[str, str]]:
    out = []
    for s in range(0, len(texts), BATCH):
        out += [
            (p.label, p.sentiment)
            for p in clf.classify([PostInput(t, None) for t in texts[s : s + BATCH]])
        ]
    return out


def agreement(ref: dict, got: dict) -> dict[str, float]:
    """Per split: the share of texts whose top emotion and sentiment both agree."""
    return {d: sum(a == b for a, b in zip(ref[d], got[d], strict=True)) / len(ref[d]) for d in ref}


def texts_of(limit: int) -> dict[str, list[str]]:
    out = {}
    for d in DATASETS:
        items = [it.text for it in Dataset.load(d).split("val") if it.has_text]
        out[d] = items[:limit]
    return out


def sensitivity(fp32: Path, version: str, texts: dict, ref: dict) -> dict[str, int]:
    """Group -> texts (of all splits) whose labels change when only that group is int8."""
    groups = sorted({g for n in text_matmuls(fp32) if (g := group_of(n))})
    out = {}
    for g in tqdm(groups, desc="one group int8"):
        with int8_classifier(fp32, version, lambda n, g=g: group_of(n) != g) as clf:
            got = {d: labels(clf, t) for d, t in texts.items()}
        out[g] = sum(sum(a != b for a, b in zip(ref[d], got[d], strict=True)) for d in ref)
    return out


def recipes(sens: dict[str, int]) -> dict[str, Callable[[str], bool]]:
    order = sorted(sens, key=lambda g: -sens[g])
    out: dict[str, Callable[[str], bool]] = {"all int8": lambda n: False, "q2 (shipped)": kept_fp32}
    for k in KS:
        top = set(order[:k])
        out[f"{k} most sensitive fp32"] = lambda n, top=top: group_of(n) in top
    return out


def speed(clfs: dict, rounds: int, seconds: float) -> dict[str, float]:
    comments = [i.text for i in Dataset.load("goemotions").split("test")[:1024]]
    posts = [PostInput(t, None) for t in comments]

    def run(clf):
        for s in range(0, len(posts), BATCH):
            clf.classify(posts[s : s + BATCH])

    best = dict.fromkeys(clfs, 0.0)
    for _ in tqdm(range(rounds), desc="speed rounds"):
        for name, clf in clfs.items():
            best[name] = max(best[name], rate(lambda clf=clf: run(clf), len(posts), seconds))
    return best


def plot(sens: dict[str, int], total: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(
        sens, key=lambda g: (int(g.split("/")[0][6:]), list(PARTS).index(g.split("/")[1]))
    )
    fig, ax = plt.subplots(figsize=(10, 3.6))
    ax.bar(range(len(names)), [100 * sens[g] / total for g in names], color="#4c72b0")
    ax.set_xticks(range(len(names)), names, rotation=70, fontsize=8)
    ax.set_ylabel("labels changed (%)")
    ax.set_title("MiniLM: one group of weight matrices int8, the rest fp32 (validation texts)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def report(sens: dict, total: int, agree: dict, speeds: dict) -> None:
    print(f"\n| group int8 alone | labels changed of {total} |\n|---|---:|")
    for g in sorted(sens, key=lambda g: -sens[g]):
        print(f"| {g} | {sens[g]} ({sens[g] / total:.2%}) |")
    print("\n| recipe | " + " | ".join(DATASETS) + " | lowest | text posts/s | vs fp32 |")
    print("|---|" + "---:|" * (len(DATASETS) + 3))
    print(
        "| fp32 | "
        + " | ".join("100%" for _ in DATASETS)
        + f" | 100% | {speeds['fp32']:.1f} | 1.00x |"
    )
    for name, a in agree.items():
        cells = " | ".join(f"{a[d]:.1%}" for d in DATASETS)
        s = speeds[name]
        print(f"| {name} | {cells} | {min(a.values()):.1%} | {s:.1f} | {s / speeds['fp32']:.2f}x |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=600, help="validation texts per dataset")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = ap.parse_args()
    ref_clf = EmotionClassifier(device="cpu", runtime="onnx")
    ref_clf.classify([PostInput("warm up", None)])
    version = ref_clf.encoder.text_backbone.version
    fp32 = onnx_dir() / f"{version}.fp32.onnx"
    texts = texts_of(args.limit)
    ref = {d: labels(ref_clf, t) for d, t in texts.items()}
    total = sum(len(t) for t in texts.values())
    sens = sensitivity(fp32, version, texts, ref)
    with contextlib.ExitStack() as stack:
        clfs = {"fp32": ref_clf}
        for name, keep in recipes(sens).items():
            clfs[name] = stack.enter_context(int8_classifier(fp32, version, keep))
        agree = {
            name: agreement(ref, {d: labels(clf, t) for d, t in texts.items()})
            for name, clf in itertools.islice(clfs.items(), 1, None)
        }
        speeds = speed(clfs, args.rounds, args.seconds)
    report(sens, total, agree, speeds)
    args.out.mkdir(parents=True, exist_ok=True)
    plot(sens, total, args.out / "text_int8_layers.png")
    doc = {
        "machine": machine("cpu"),
        "model_version": ref_clf.version,
        "texts": {d: len(t) for d, t in texts.items()},
        "sensitivity_labels_changed": sens,
        "agreement_val": agree,
        "text_posts_per_s": speeds,
    }
    (args.out / "text_int8_layers.json").write_text(json.dumps(doc, indent=1))
    print(f"wrote {args.out / 'text_int8_layers.json'} and text_int8_layers.png")


if __name__ == "__main__":
    main()
