"""The GPU benchmark in one command (``make bench-gpu``), one JSON at the end.

    python -m bench.gpu [--json bench/results/gpu.json]

On a CUDA machine, in about 5 minutes:

1. model only (``bench/model_limit.py --device cuda``), both modalities, text, image, at
   batches of 64 to 1,024, in fp16 and in bf16, with the share of the GPU's dense peak;
2. picture decoding (``bench/image_path.py --device cuda``): nvJPEG against Pillow;
3. the pipeline through a local broker and Redis (``bench/pipeline.py``, the worker on
   CUDA, throughput only).

Each step's own JSON goes to a temporary folder; this script gathers them into one file
with the machine. Without CUDA it stops at once with a clear message (exit 2).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench import REPO
from bench.machine import machine

BATCHES = ["64", "128", "256", "512", "1024"]


def steps(out: Path) -> dict[str, list[str]]:
    py = [sys.executable]
    model = [*py, "-m", "bench.model_limit", "--device", "cuda", "--batches", *BATCHES,
             "--seconds", "2", "--rounds", "1", "--posts", "1024"]  # fmt: skip
    return {
        "model_fp16": [*model, "--precision", "fp16", "--json", str(out / "model_fp16.json")],
        "model_bf16": [*model, "--precision", "bf16", "--json", str(out / "model_bf16.json")],
        "decode": [
            *py,
            "-m",
            "bench.image_path",
            "--device",
            "cuda",
            "--pictures",
            "64",
            "--json",
            str(out / "decode.json"),
        ],  # fmt: skip
        "pipeline": [
            *py,
            "-m",
            "bench.pipeline",
            "--device",
            "cuda",
            "--posts",
            "1024",
            "--single-posts",
            "32",
            "--batch",
            "256",
            "--loads",
            "0.5",
            "--load-seconds",
            "10",
            "--rounds",
            "1",
            "--json",
            str(out / "pipeline.json"),
        ],  # fmt: skip
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path, default=REPO / "bench/results/gpu.json")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print(
            "bench/gpu.py needs a CUDA GPU: torch.cuda.is_available() is False on this "
            "machine (torch " + torch.__version__ + "). Run it on a GPU machine with the CUDA "
            "build of torch (Dockerfile.cuda, or pip install torch==2.13.0 from the CUDA index).",
            file=sys.stderr,
        )
        return 2
    report: dict = {"machine": machine(torch.device("cuda")), "steps": {}}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for name, cmd in steps(out).items():
            t0 = time.monotonic()
            done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
            step = {"seconds": round(time.monotonic() - t0, 1), "returncode": done.returncode}
            result = out / f"{name}.json"
            if result.is_file():
                step["result"] = json.loads(result.read_text())
            else:
                step["stderr"] = done.stderr[-3000:]
            report["steps"][name] = step
            print(f"{name}: exit {done.returncode} in {step['seconds']} s", flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.json}")
    return 0 if all(s["returncode"] == 0 for s in report["steps"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
