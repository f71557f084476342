"""The model's limit: posts/s of the served classifier on pre-decoded inputs, by modality.

    python -m bench.model_limit [--batches 1 8 32 64] [--seconds 3] [--rounds 2] [--device cuda]

"Pre-decoded" means the pictures are already uint8 tensors at 224x224 (on the device when
it is CUDA), so this is encoders + fusion head and nothing else: the ceiling that the
streaming pipeline is measured against. Conditions: both modalities, text only, image
only, on mvsa-single test posts (../shared/data). Rounds are interleaved; each cell
keeps its best round.

It also counts the floating-point work of one post per modality with
``torch.utils.flop_counter`` and states the achieved FLOP/s; with ``--peak-tflops`` (or
a known GPU) it states the ratio of achieved to the arithmetic limit. Prints a table and
writes JSON (bench/results/model_limit[-<device>].json). Figures, not tests.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from bench import REPO
from bench.machine import machine
from bench.timing import rate
from emostream.model.classifier import EmotionClassifier
from emostream.model.encoder import PostInput
from emostream.model.training.datasets import Dataset

# Dense fp16/bf16 tensor-core peaks from the vendors' data sheets (TFLOP/s, no sparsity).
KNOWN_PEAKS = {"H100": 989.4, "H200": 989.4, "A100": 312.0, "L4": 121.0, "A10": 125.0}


def flops_per_post(clf: EmotionClassifier, posts: list[PostInput]) -> float:
    """Floating-point operations of one post, averaged over ``posts`` (one pass)."""
    counter = FlopCounterMode(display=False)
    with counter:
        clf.classify(posts)
    return counter.get_total_flops() / len(posts)


def posts_per_s(clf, posts, batch: int, seconds: float) -> float:
    """Posts/s classifying ``posts`` in batches of ``batch``, round and round."""
    chunks = itertools.cycle(
        [posts[s : s + batch] for s in range(0, len(posts) - batch + 1, batch)]
    )
    sync = torch.cuda.synchronize if clf.device.type == "cuda" else (lambda: None)
    return rate(lambda: clf.classify(next(chunks)), batch, seconds, sync)


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32, 64])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--posts", type=int, default=256)
    ap.add_argument("--device", default=None)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--peak-tflops", type=float, default=None)
    ap.add_argument("--json", type=Path, default=None)
    return ap.parse_args()


def _conditions(clf: EmotionClassifier, args) -> dict[str, list[PostInput]]:
    items = Dataset.load("mvsa-single").split("test")[: args.posts]
    pics = [clf.encoder.decode(i.image_path.read_bytes()) for i in items]
    if clf.device.type == "cuda":
        pics = [p.to(clf.device) for p in pics]
    return {
        "both": [PostInput(i.text, p) for i, p in zip(items, pics, strict=True)],
        "text": [PostInput(i.text, None) for i in items],
        "image": [PostInput(None, p) for p in pics],
    }


def _measure(clf: EmotionClassifier, conditions: dict, passes: dict, args) -> tuple[dict, dict]:
    """Best posts/s over the rounds per (condition, batch), and per forward-pass size."""
    enc = clf.encoder
    pass_best: dict[str, float] = {}
    best: dict[tuple[str, int], float] = {}
    for rnd in range(args.rounds):
        # forward-pass sizes, side by side: the encoder's defaults against the previous ones
        for name, (ip, tp) in passes.items():
            enc.image_pass, enc.text_pass = ip, tp
            r = posts_per_s(clf, conditions["both"], 32, args.seconds)
            pass_best[name] = max(pass_best.get(name, 0.0), r)
        enc.image_pass, enc.text_pass = passes["now"]
        for bs in args.batches:
            for cond, posts in conditions.items():
                r = posts_per_s(clf, posts, bs, args.seconds)
                best[(cond, bs)] = max(best.get((cond, bs), 0.0), r)
            print(
                f"round {rnd + 1}/{args.rounds} batch {bs}: "
                + ", ".join(f"{c} {best[(c, bs)]:.1f}" for c in conditions),
                flush=True,
            )
    return best, pass_best


def _rows(conditions: dict, args, best: dict, flops: dict, peak: float | None) -> list[dict]:
    rows = []
    for cond in conditions:
        for bs in args.batches:
            rate = best[(cond, bs)]
            achieved = rate * flops[cond] / 1e12
            rows.append(
                {
                    "condition": cond,
                    "batch": bs,
                    "posts_per_s": rate,
                    "gflops_per_post": flops[cond] / 1e9,
                    "achieved_tflops": achieved,
                    "of_peak": achieved / peak if peak else None,
                    "arithmetic_limit_posts_per_s": peak * 1e12 / flops[cond] if peak else None,
                }
            )
    return rows


def _print_table(clf, info: dict, rows: list[dict], passes: dict, pass_best: dict) -> None:
    where = info.get("gpu") or f"{info['cpu_model']} ({info['cores']} cores)"
    print(f"\nserved model {clf.version} on {where}, {clf.device}, {clf.encoder.precision}")
    print("| condition | batch | posts/s | GFLOP/post | achieved TFLOP/s | of peak |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        of_peak = f"{100 * r['of_peak']:.1f}%" if r["of_peak"] else "n/a"
        print(
            f"| {r['condition']} | {r['batch']} | {r['posts_per_s']:.1f} | "
            f"{r['gflops_per_post']:.2f} | {r['achieved_tflops']:.4f} | {of_peak} |"
        )
    print(
        "forward passes, both modalities, batch 32: "
        + ", ".join(
            f"{n} (images {ip}, texts {tp} per pass) {pass_best[n]:.1f} posts/s"
            for n, (ip, tp) in passes.items()
        )
    )


def main() -> None:
    args = _args()
    clf = EmotionClassifier(device=args.device, precision=args.precision)
    conditions = _conditions(clf, args)
    flops = {c: flops_per_post(clf, posts[:32]) for c, posts in conditions.items()}
    passes = {"now": (clf.encoder.image_pass, clf.encoder.text_pass), "before": (8, 64)}
    best, pass_best = _measure(clf, conditions, passes, args)
    info = machine(clf.device)
    peak = args.peak_tflops
    if peak is None and "gpu" in info:
        peak = next((v for k, v in KNOWN_PEAKS.items() if k in info["gpu"]), None)
    rows = _rows(conditions, args, best, flops, peak)
    _print_table(clf, info, rows, passes, pass_best)
    out = args.json or REPO / "bench/results" / (
        "model_limit.json" if clf.device.type == "cpu" else f"model_limit-{clf.device.type}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "machine": info,
                "model": clf.version,
                "precision": clf.encoder.precision,
                "peak_tflops": peak,
                "rows": rows,
                "pass_sizes": {
                    n: {"image_pass": ip, "text_pass": tp, "posts_per_s": pass_best[n]}
                    for n, (ip, tp) in passes.items()
                },
            },
            indent=1,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
