"""Encoder throughput: images/s and texts/s against batch size, CPU threads and channels_last.

    python -m bench.encoders [--batches 1 2 4 8 16 32 64 128] [--threads 1 2]
                             [--seconds 1.5] [--rounds 2] [--device cpu]

Every configuration is one forward pass of ``batch`` inputs, timed for at least
``--seconds`` (at least two passes) after a warm-up pass. The whole grid is run
``--rounds`` times, interleaved, and each cell keeps its best round, so a burst of
noise from the rest of the machine does not decide a comparison. Images are real
mvsa-single pictures (../shared/data), decoded once up front; texts are their tweets.
Prints tables and writes JSON (bench/results/encoders.json). Figures, not tests.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

from bench import REPO
from bench.machine import machine
from bench.timing import rate
from emostream.model.encoder import Encoder
from emostream.model.training.datasets import Dataset


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64, 128])
    ap.add_argument("--threads", type=int, nargs="+", default=sorted({1, os.cpu_count() or 1}))
    ap.add_argument("--seconds", type=float, default=1.5)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--device", default=None)
    ap.add_argument("--json", type=Path, default=REPO / "bench/results/encoders.json")
    return ap.parse_args()


def _measure(args, layouts: dict, pics: list, texts: list[str]) -> list[dict]:
    """Best rate over the rounds per (threads, batch), images per layout and texts."""
    enc = layouts["channels_last"]
    images: dict[tuple, float] = {}
    text_rates: dict[tuple, float] = {}
    for rnd in range(args.rounds):
        for threads in args.threads:
            torch.set_num_threads(threads)
            for bs in args.batches:
                for layout, e in layouts.items():
                    r = rate(lambda e=e, bs=bs: e.encode_images(pics[:bs], bs), bs, args.seconds)
                    key = (threads, bs, layout)
                    images[key] = max(images.get(key, 0.0), r)
                r = rate(lambda bs=bs: enc.encode_texts(texts[:bs], bs), bs, args.seconds)
                text_rates[(threads, bs)] = max(text_rates.get((threads, bs), 0.0), r)
                print(
                    f"round {rnd + 1}/{args.rounds} threads {threads} batch {bs:>3}: "
                    f"images/s {images[(threads, bs, 'channels_last')]:.1f} (channels_last) "
                    f"{images[(threads, bs, 'contiguous')]:.1f} (contiguous), "
                    f"texts/s {text_rates[(threads, bs)]:.1f}",
                    flush=True,
                )

    return [
        {
            "threads": t,
            "batch": bs,
            "images_per_s_channels_last": images[(t, bs, "channels_last")],
            "images_per_s_contiguous": images[(t, bs, "contiguous")],
            "texts_per_s": text_rates[(t, bs)],
        }
        for t in args.threads
        for bs in args.batches
    ]


def _print_table(rows: list[dict], enc: Encoder, info: dict) -> None:
    print(f"\nencoders {enc.version} on {info['cpu_model']} ({info['cores']} cores), {enc.device}")
    print("| threads | batch | images/s channels_last | images/s contiguous | texts/s |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['threads']} | {r['batch']} | {r['images_per_s_channels_last']:.1f} | "
            f"{r['images_per_s_contiguous']:.1f} | {r['texts_per_s']:.1f} |"
        )
    best_img = max(rows, key=lambda r: r["images_per_s_channels_last"])
    best_txt = max(rows, key=lambda r: r["texts_per_s"])
    print(
        f"best: images {best_img['images_per_s_channels_last']:.1f}/s at batch "
        f"{best_img['batch']} x {best_img['threads']} threads; texts "
        f"{best_txt['texts_per_s']:.1f}/s at batch {best_txt['batch']} x "
        f"{best_txt['threads']} threads"
    )


def main() -> None:
    args = _args()
    layouts = {"channels_last": Encoder(device=args.device, channels_last=True)}
    layouts["contiguous"] = Encoder(device=args.device, channels_last=False)
    enc = layouts["channels_last"]
    items = Dataset.load("mvsa-single").split("val")[: max(args.batches)]
    items = (items * (max(args.batches) // len(items) + 1))[: max(args.batches)]
    pics = [enc.decode(i.image_path.read_bytes()) for i in items]
    texts = [i.text for i in items]
    rows = _measure(args, layouts, pics, texts)
    info = machine(enc.device)
    _print_table(rows, enc, info)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "machine": info,
                "encoders": enc.version,
                "seconds_per_cell": args.seconds,
                "rounds": args.rounds,
                "rows": rows,
            },
            indent=1,
        )
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
