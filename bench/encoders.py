"""Encoder throughput on this machine: images/s and texts/s at batch 1, 8 and 32.

Images are measured as one forward pass of the whole batch, and with the encoder's
default chunking (8 pictures per pass on CPU), side by side.

    python bench/encoders.py [--batches 1 8 32] [--seconds 5] [--json bench/results/encoders.json]

Images are real posts of mvsa-single (from ../shared/data), decoded once up front
for the "encode" column; "decode" is Pillow alone (draft mode), per image. Texts are
mvsa-single tweets. Prints a table and writes JSON. Figures, not tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from model.datasets import Dataset  # noqa: E402
from model.encoder import Encoder  # noqa: E402


def rate(fn, items_per_call: int, seconds: float) -> float:
    fn()  # warm-up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += items_per_call
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--device", default=None)
    ap.add_argument("--json", type=Path, default=Path("bench/results/encoders.json"))
    args = ap.parse_args()

    enc = Encoder(device=args.device)
    items = Dataset.load("mvsa-single").split("val")[:64]
    raw = [i.image_path.read_bytes() for i in items]
    pics = [enc.decode(b) for b in raw]
    texts = [i.text for i in items]
    enc.encode_texts(texts[:2])

    rows = []
    decode = rate(lambda: [enc.decode(b) for b in raw[:16]], 16, args.seconds)
    for bs in args.batches:
        # one forward pass of bs pictures (the encoder's own default would cut it into 8s)
        img = rate(lambda bs=bs: enc.encode_images(pics[:bs], bs), bs, args.seconds)
        chunked = rate(lambda bs=bs: enc.encode_images(pics[:bs]), bs, args.seconds)
        txt = rate(lambda bs=bs: enc.encode_texts(texts[:bs], bs), bs, args.seconds)
        rows.append(
            {
                "batch": bs,
                "images_per_s": img,
                "images_per_s_default_chunks": chunked,
                "texts_per_s": txt,
            }
        )

    machine = {
        "device": str(enc.device),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    print(f"encoders {enc.version} on {machine}")
    print(f"Pillow decode+resize+crop (draft mode): {decode:.1f} images/s per core")
    print(
        f"{'batch':>5} | {'images/s, one pass':>18} | {'images/s, default chunks':>24} | "
        f"{'texts/s':>8}"
    )
    print("------|--------------------|--------------------------|---------")
    for r in rows:
        print(
            f"{r['batch']:>5} | {r['images_per_s']:>18.1f} | "
            f"{r['images_per_s_default_chunks']:>24.1f} | {r['texts_per_s']:>8.1f}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {"machine": machine, "encoders": enc.version, "decode_per_s": decode, "rows": rows},
            indent=1,
        )
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
