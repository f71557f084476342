"""Two shipped model versions side by side: FLOPs and CPU posts/s per post, both modalities.

    python -m bench.model_versions [--weights COMMONSPACE_V1 COMMONSPACE_V2] [--runtime eager]

Each version classifies the same mvsa-single test posts (text + pre-decoded picture) in
batches of 32; rounds are interleaved and each version keeps its best round, so machine
drift does not favour either. FLOPs per post are counted with ``torch.utils.flop_counter``.
Prints a table and writes bench/results/model_versions.json.
"""

from __future__ import annotations

import argparse
import itertools
import json

from bench import REPO
from bench.machine import machine
from bench.model_limit import flops_per_post
from bench.timing import rate
from emostream.model.classifier import EmotionClassifier
from emostream.model.encoder import PostInput
from emostream.model.training.datasets import Dataset
from emostream.model.weights import Weights


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", nargs="+", default=["COMMONSPACE_V1", "COMMONSPACE_V2"])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--posts", type=int, default=128)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--runtime",
        default="eager",
        help="the same for every version (eager: FLOPs are countable, and the base encoders "
        "of v1 have no ONNX path)",
    )
    args = ap.parse_args()

    clfs = {
        w: EmotionClassifier(Weights[w], device="cpu", runtime=args.runtime) for w in args.weights
    }
    first = next(iter(clfs.values()))
    items = Dataset.load("mvsa-single").split("test")[: args.posts]
    pics = [first.encoder.decode(i.image_path.read_bytes()) for i in items if i.image_path]
    posts = [PostInput(i.text, p) for i, p in zip(items, pics, strict=True)]
    chunks = [posts[s : s + args.batch] for s in range(0, len(posts), args.batch)]
    flops = {w: flops_per_post(c, posts[: args.batch]) for w, c in clfs.items()}
    best: dict[str, float] = {}
    for rnd in range(args.rounds):
        for w, clf in clfs.items():
            cycle = itertools.cycle(chunks)
            r = rate(
                lambda clf=clf, cycle=cycle: clf.classify(next(cycle)), args.batch, args.seconds
            )
            best[w] = max(best.get(w, 0.0), r)
        print(f"round {rnd + 1}: " + ", ".join(f"{w} {best[w]:.1f}" for w in clfs), flush=True)
    base = best[args.weights[0]]
    print("\n| weights | version | encoders | GFLOP/post | posts/s (batch 32) | cost vs first |")
    print("|---|---|---|---:|---:|---:|")
    rows = []
    for w, clf in clfs.items():
        cost = base / best[w]
        rows.append(
            {
                "weights": w,
                "version": clf.version,
                "encoders": clf.card["encoders"]["version"],
                "gflops_per_post": flops[w] / 1e9,
                "posts_per_s": best[w],
                "cost_vs_first": cost,
            }
        )
        print(
            f"| {w} | {clf.version} | {clf.card['encoders']['version']} | {flops[w] / 1e9:.2f} "
            f"| {best[w]:.1f} | {cost:.2f}x |"
        )
    out = REPO / "bench/results/model_versions.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"machine": machine(first.device), "runtime": args.runtime, "rows": rows}
    out.write_text(json.dumps(doc, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
