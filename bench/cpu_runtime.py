"""The encoders' CPU runtimes side by side: eager torch, ONNX Runtime fp32, ONNX Runtime
with int8 text weights, and ONNX Runtime fp32 with spinning idle threads (its default,
the ONNX path before).

    python -m bench.cpu_runtime [--seconds 5] [--rounds 3] [--passes]

In one run, interleaved rounds (each cell keeps its best), the served classifier's
posts/s on pre-decoded inputs:

* both modalities: 128 mvsa-single test posts in batches of 32 (the issue's measure);
* text only: GoEmotions test comments in batches of 64;
* image only: the same 128 pictures in batches of 32;

then, each runtime in a fresh process, the time to load the model and classify one post
(warm ONNX files, and cold: exported first) and the process's peak RSS. ``--passes``
also sweeps the forward-pass sizes of the ONNX encoders. Prints tables and writes
bench/results/cpu_runtime.json. Accuracy per test split: ``emostream eval --runtime``
(docs/performance.md).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from bench import REPO
from bench.machine import machine
from bench.timing import rate
from emostream.model.classifier import EmotionClassifier
from emostream.model.encoder import PostInput
from emostream.model.training.datasets import Dataset

RUNTIMES = ("eager", "onnx", "onnx-int8")
OLD = "eager"
"""The path before: plain torch (``--runtime eager`` / EMOSTREAM_RUNTIME=eager)."""
SPIN = "onnx-spin"
"""ONNX Runtime fp32 with its idle threads spinning (its default; EMOSTREAM_ORT_SPIN=1)."""

START_UP = """
import sys, time
t0 = time.perf_counter()
from emostream.model.classifier import EmotionClassifier
from emostream.model.encoder import PostInput
import torch
clf = EmotionClassifier(device="cpu", runtime=sys.argv[1])
clf.classify([PostInput("first post", torch.zeros(3, 224, 224, dtype=torch.uint8))])
seconds = time.perf_counter() - t0
status = open("/proc/self/status").read().splitlines()
hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(seconds, hwm // 1024)  # VmHWM: this process's peak RSS (ru_maxrss survives exec)
"""


def posts_per_s(clf, posts, batch: int, seconds: float) -> float:
    chunks = itertools.cycle(
        [posts[s : s + batch] for s in range(0, len(posts) - batch + 1, batch)]
    )
    return rate(lambda: clf.classify(next(chunks)), batch, seconds)


def start_up(runtime: str, onnx_dir: str) -> tuple[float, int]:
    """(seconds to load and classify one post, peak RSS MiB) in a fresh process."""
    env = {**os.environ, "EMOSTREAM_ONNX_DIR": onnx_dir}
    out = subprocess.run(
        [sys.executable, "-c", START_UP, runtime], env=env, capture_output=True, text=True
    )
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    seconds, rss = out.stdout.split()[-2:]
    return float(seconds), int(rss)


def sweep_passes(clfs: dict, pics, texts) -> dict:
    import time

    out: dict = {}
    for name in ("onnx", "onnx-int8"):
        enc = clfs[name].encoder
        for ip in (4, 8, 16, 32):
            t = time.perf_counter()
            enc.encode_images(pics, batch_size=ip)
            out[f"{name} image pass {ip}"] = len(pics) / (time.perf_counter() - t)
        # as served: classify() on batches of 64 comments, each sorted by length and cut
        # into passes of ``tp`` texts (a pass pads its texts to the longest)
        posts = [PostInput(t, None) for t in texts]
        default = enc.text_pass
        for tp in (8, 16, 32, 64):
            enc.text_pass = tp
            t = time.perf_counter()
            for s in range(0, len(posts), 64):
                clfs[name].classify(posts[s : s + 64])
            out[f"{name} text pass {tp}"] = len(posts) / (time.perf_counter() - t)
        enc.text_pass = default
    for k, v in out.items():
        print(f"{k}: {v:.1f}/s")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--passes", action="store_true", help="also sweep forward-pass sizes")
    ap.add_argument("--json", type=Path, default=REPO / "bench/results/cpu_runtime.json")
    args = ap.parse_args()

    clfs = {rt: EmotionClassifier(device="cpu", runtime=rt) for rt in RUNTIMES}
    os.environ["EMOSTREAM_ORT_SPIN"] = "1"  # the ONNX path before: idle threads spin
    clfs[SPIN] = EmotionClassifier(device="cpu", runtime="onnx")
    warm = PostInput("sessions open on first use", torch.zeros(3, 224, 224, dtype=torch.uint8))
    clfs[SPIN].classify([warm])
    del os.environ["EMOSTREAM_ORT_SPIN"]
    items = Dataset.load("mvsa-single").split("test")[:128]
    pics = [clfs[OLD].encoder.decode(i.image_path.read_bytes()) for i in items]
    comments = [i.text for i in Dataset.load("goemotions").split("test")[:1024]]
    conditions = {
        "both": ([PostInput(i.text, p) for i, p in zip(items, pics, strict=True)], 32),
        "text": ([PostInput(t, None) for t in comments], 64),
        "image": ([PostInput(None, p) for p in pics], 32),
    }
    best: dict[tuple[str, str], float] = {}
    for rnd in range(args.rounds):
        for cond, (posts, batch) in conditions.items():
            for rt, clf in clfs.items():
                r = posts_per_s(clf, posts, batch, args.seconds)
                best[(cond, rt)] = max(best.get((cond, rt), 0.0), r)
        print(
            f"round {rnd + 1}/{args.rounds}: "
            + ", ".join(f"{c}/{rt} {v:.0f}" for (c, rt), v in best.items()),
            flush=True,
        )
    passes = sweep_passes(clfs, pics, comments[:512]) if args.passes else {}

    with tempfile.TemporaryDirectory() as cold:
        starts = {f"{rt} (cold)": start_up(rt, cold) for rt in RUNTIMES[1:]}
        starts.update({rt: start_up(rt, cold) for rt in RUNTIMES})  # the files exist now

    info = machine(clfs[OLD].device)
    print(f"\n{info['cpu_model']} ({info['cores']} cores), model {clfs[OLD].version}")
    names = list(clfs)
    print(
        "| condition | batch | "
        + " | ".join(f"{rt} posts/s" for rt in names)
        + " | "
        + " | ".join(f"{rt} / eager" for rt in names[1:])
        + " |"
    )
    print("|---|---:|" + "---:|" * (2 * len(names) - 1))
    for cond, (_, batch) in conditions.items():
        v = [best[(cond, rt)] for rt in names]
        print(
            f"| {cond} | {batch} | "
            + " | ".join(f"{x:.1f}" for x in v)
            + " | "
            + " | ".join(f"{x / v[0]:.2f}x" for x in v[1:])
            + " |"
        )
    print("\n| runtime | load + first post, s | peak RSS, MiB |\n|---|---:|---:|")
    for name, (sec, rss) in starts.items():
        print(f"| {name} | {sec:.2f} | {rss} |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "machine": info,
                "model_version": clfs[OLD].version,
                "posts_per_s": {f"{c}/{rt}": v for (c, rt), v in best.items()},
                "batches": {c: b for c, (_, b) in conditions.items()},
                "start_up": {k: {"seconds": s, "peak_rss_mib": m} for k, (s, m) in starts.items()},
                "passes": passes,
                "settings": {"seconds": args.seconds, "rounds": args.rounds},
            },
            indent=1,
        )
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
