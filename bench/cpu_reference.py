"""The served classifier's CPU runtimes against a plain fp32 reference, in one run.

    python -m bench.cpu_reference [--seconds 5] [--rounds 3]

The reference is what a plain implementation of the same encoders does, with no head:
all-MiniLM-L6-v2 through sentence-transformers in fp32, and EfficientNet-Lite0 on eager
torch in fp32 (channels_last, passes of 8) over pictures decoded and resized by Pillow.
The served classifier (``EmotionClassifier.classify``) runs under each runtime on the same
posts, image bytes in (decode included):

* both: 128 mvsa-single test posts, text and picture bytes, in batches of 32;
* text: 1,024 GoEmotions test comments in batches of 64;

interleaved rounds, each cell keeps its best. Prints posts/s and the ratio to the
reference, and writes bench/results/cpu_reference.json with the machine.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench import REPO
from bench.machine import machine
from bench.timing import rate
from emostream.model.classifier import EmotionClassifier
from emostream.model.encoder import PostInput
from emostream.model.training.datasets import Dataset

RUNTIMES = ("onnx", "onnx-int8", "onnx-int8-image")
REFERENCE = "plain fp32"
IMAGE_PASS = 8


class PlainReference:
    """Plain fp32 encoders, no head: texts and picture bytes -> features."""

    def __init__(self) -> None:
        from sentence_transformers import SentenceTransformer

        from emostream.model.pretrained import efficientnet_lite
        from emostream.model.text_model import _base_path

        self.text = SentenceTransformer(str(_base_path()), device="cpu")
        net = efficientnet_lite(0).eval()
        self.image = net.to(memory_format=torch.channels_last)

    def pixels(self, data: bytes) -> torch.Tensor:
        """Pillow decode, resize to 224 x 224, scale to [-1, 1] (the network's input)."""
        with Image.open(io.BytesIO(data)) as im:
            rgb = im.convert("RGB").resize((224, 224), Image.Resampling.BILINEAR)
        x = torch.from_numpy(np.asarray(rgb, dtype=np.float32)).permute(2, 0, 1)
        return x / 127.5 - 1.0

    def __call__(self, posts: list[PostInput]) -> None:
        texts = [p.text for p in posts if p.text]
        pics = [self.pixels(p.image) for p in posts if isinstance(p.image, bytes)]
        with torch.inference_mode():
            if texts:
                self.text.encode(texts, batch_size=len(texts), convert_to_numpy=False)
            for s in range(0, len(pics), IMAGE_PASS):
                x = torch.stack(pics[s : s + IMAGE_PASS])
                self.image(x.contiguous(memory_format=torch.channels_last))


def conditions() -> dict[str, tuple[list[PostInput], int]]:
    items = Dataset.load("mvsa-single").split("test")[:128]
    both = [PostInput(i.text, i.image_path.read_bytes()) for i in items]
    comments = [i.text for i in Dataset.load("goemotions").split("test")[:1024]]
    return {"both": (both, 32), "text": ([PostInput(t, None) for t in comments], 64)}


def measure(runners: dict, conds: dict, rounds: int, seconds: float) -> dict:
    best: dict[tuple[str, str], float] = {}
    for rnd in range(rounds):
        for cond, (posts, batch) in conds.items():
            chunks = [posts[s : s + batch] for s in range(0, len(posts) - batch + 1, batch)]
            for name, run in runners.items():
                it = itertools.cycle(chunks)
                r = rate(lambda run=run, it=it: run(next(it)), batch, seconds)
                best[(cond, name)] = max(best.get((cond, name), 0.0), r)
        print(
            f"round {rnd + 1}/{rounds}: "
            + ", ".join(f"{c}/{n} {v:.0f}" for (c, n), v in best.items())
        )
    return best


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path, default=REPO / "bench/results/cpu_reference.json")
    args = ap.parse_args()
    clfs = {rt: EmotionClassifier(device="cpu", runtime=rt) for rt in RUNTIMES}
    runners = {REFERENCE: PlainReference(), **{rt: c.classify for rt, c in clfs.items()}}
    conds = conditions()
    best = measure(runners, conds, args.rounds, args.seconds)
    info = machine("cpu")
    print(f"\n{info['cpu_model']} ({info['cores']} cores), model {clfs['onnx'].version}")
    print(
        "| condition | batch | "
        + " | ".join(f"{n} posts/s" for n in runners)
        + " | "
        + " | ".join(f"{rt} / reference" for rt in RUNTIMES)
        + " |"
    )
    print("|---|---:|" + "---:|" * (len(runners) + len(RUNTIMES)))
    for cond, (_, batch) in conds.items():
        ref = best[(cond, REFERENCE)]
        cells = [f"{best[(cond, n)]:.1f}" for n in runners]
        cells += [f"{best[(cond, rt)] / ref:.2f}x" for rt in RUNTIMES]
        print(f"| {cond} | {batch} | " + " | ".join(cells) + " |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "machine": info,
        "model_version": clfs["onnx"].version,
        "posts_per_s": {f"{c}/{n}": v for (c, n), v in best.items()},
        "ratio_to_reference": {
            f"{c}/{rt}": best[(c, rt)] / best[(c, REFERENCE)] for c in conds for rt in RUNTIMES
        },
        "batches": {c: b for c, (_, b) in conds.items()},
        "settings": {"seconds": args.seconds, "rounds": args.rounds, "image_pass": IMAGE_PASS},
    }
    args.json.write_text(json.dumps(doc, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
