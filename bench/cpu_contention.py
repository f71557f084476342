"""Why the pipeline falls short of the model alone on a small CPU: the model's OpenMP
threads against the rest of the worker.

    python -m bench.cpu_contention [--duties 0 0.2 0.4] [--threads 1 2] [--rounds 2]

The served model classifies pre-decoded posts (both modalities, batches of 32) in a
thread of its own, as in the worker, while another thread of the same process does pure
Python work for ``duty`` of the time in 2 ms slices: a stand-in for the worker's event
loop (Kafka fetches, HTTP, JSON, Redis). Torch's intra-op threads synchronise at every
parallel region, so a core taken away for a moment stalls all of them: on a machine with
as many cores as torch threads, a little other work costs the model much more than its
own share.

Second table: the same model thread beside a pool of 2 threads that decodes 40
pictures/s (about the rate the pipeline classifies them), the decoded array turned from
HWC to CHW either with a torch op (as the worker first did) or with numpy (as it does
now). Every thread that runs a parallel torch
op gets an OpenMP team of its own, and those teams spin beside the model's. Cells are
interleaved over ``--rounds`` rounds, best kept. Prints a table and
writes JSON (bench/results/cpu_contention.json). Figures, not tests.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from bench import REPO
from bench.machine import machine
from emostream.model.classifier import EmotionClassifier
from emostream.model.encoder import PostInput
from emostream.model.training.datasets import Dataset


class Noise:
    """A thread that computes for ``duty`` of the time, in slices of about 2 ms."""

    def __init__(self, duty: float) -> None:
        self.duty, self.running = duty, True
        self.thread = threading.Thread(target=self._run, daemon=True)
        if duty > 0:
            self.thread.start()

    def _run(self) -> None:
        busy = 0.002 * self.duty / (1 - self.duty)
        while self.running:
            t = time.perf_counter()
            while time.perf_counter() - t < busy:
                pass
            time.sleep(0.002)

    def stop(self) -> None:
        self.running = False
        if self.thread.is_alive():
            self.thread.join()


class DecodeLoop:
    """A pool of 2 threads decoding 40 pictures/s, CHW made by torch or numpy."""

    def __init__(self, blobs: list[bytes], chw: str) -> None:
        import io

        import numpy as np
        from PIL import Image

        from emostream.model.preprocessing import ImageTransform

        t = ImageTransform()

        def decode(data: bytes) -> torch.Tensor:
            img = Image.open(io.BytesIO(data))
            img.draft("RGB", (t.resize, t.resize))
            arr = np.asarray(img.convert("RGB").resize((224, 224)), dtype=np.uint8)
            if chw == "torch":
                return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()
            return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))

        self.running = True
        self.pool = ThreadPoolExecutor(2, thread_name_prefix="decode")

        def loop() -> None:  # 20 pictures/s per thread: about the pipeline's own rate
            while self.running:
                for b in blobs:
                    t0 = time.perf_counter()
                    decode(b)
                    time.sleep(max(0.0, 0.05 - (time.perf_counter() - t0)))

        self.jobs = [self.pool.submit(loop) for _ in range(2)]

    def stop(self) -> None:
        self.running = False
        self.pool.shutdown(wait=True)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--duties", type=float, nargs="+", default=[0.0, 0.2, 0.4])
    ap.add_argument("--threads", type=int, nargs="+", default=sorted({1, os.cpu_count() or 1}))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--posts", type=int, default=96)
    ap.add_argument("--json", type=Path, default=REPO / "bench/results/cpu_contention.json")
    args = ap.parse_args()

    model = ThreadPoolExecutor(1, thread_name_prefix="model")  # all torch work here
    clf = model.submit(EmotionClassifier, device="cpu").result()
    items = Dataset.load("mvsa-single").split("test")[: args.posts]
    posts = model.submit(
        lambda: [PostInput(i.text, clf.encoder.decode(i.image_path.read_bytes())) for i in items]
    ).result()

    def rate() -> float:
        t0 = time.perf_counter()
        for s in range(0, len(posts), 32):
            clf.classify(posts[s : s + 32])
        return len(posts) / (time.perf_counter() - t0)

    model.submit(rate).result()  # warm-up
    best: dict[tuple[int, float], float] = {}
    for rnd in range(args.rounds):
        for threads in args.threads:
            model.submit(torch.set_num_threads, threads).result()
            for duty in args.duties:
                noise = Noise(duty)
                try:
                    r = model.submit(rate).result()
                finally:
                    noise.stop()
                best[(threads, duty)] = max(best.get((threads, duty), 0.0), r)
                print(f"round {rnd + 1}: {threads} threads, duty {duty}: {r:.1f}", flush=True)

    raw = [i.image_path.read_bytes() for i in items[:16]]
    decode_best: dict[str, float] = {}
    model.submit(torch.set_num_threads, max(args.threads)).result()
    for rnd in range(args.rounds):
        for chw in ("torch", "numpy"):
            loop = DecodeLoop(raw, chw)
            try:
                r = model.submit(rate).result()
            finally:
                loop.stop()
            decode_best[chw] = max(decode_best.get(chw, 0.0), r)
            print(f"round {rnd + 1}: beside decoding with {chw} CHW: {r:.1f}", flush=True)

    info = machine("cpu")
    print(
        f"\nmodel alone (both modalities, batch 32) on {info['cpu_model']} ({info['cores']} "
        "cores), posts/s, with another thread busy for a share of the time"
    )
    print("| torch threads | " + " | ".join(f"other work {d:.0%}" for d in args.duties) + " |")
    print("|---|" + "---|" * len(args.duties))
    for t in args.threads:
        print(f"| {t} | " + " | ".join(f"{best[(t, d)]:.1f}" for d in args.duties) + " |")
    print(f"\nthe same model ({max(args.threads)} torch threads) beside a 2-thread decode pool")
    print("| decode pool makes CHW with | posts/s |")
    print("|---|---|")
    for chw, v in decode_best.items():
        print(f"| {chw} | {v:.1f} |")
    rows = [{"threads": t, "duty": d, "posts_per_s": v} for (t, d), v in best.items()]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps({"machine": info, "rows": rows, "beside_decoding": decode_best}, indent=1)
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
