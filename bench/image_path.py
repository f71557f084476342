"""The image path per picture: fetch over HTTP, then decode + resize + crop, three ways.

    python -m bench.image_path [--pictures 16] [--seconds 2] [--device cuda]

Pictures at three sizes: the datasets' own (shorter side 256, ~20 kB), a 1280x960 web
picture and a 4032x3024 phone photo. The larger ones are mvsa-single pictures enlarged
with Pillow and saved as JPEG quality 90 (no photos can be downloaded here; enlarged
pictures compress better than real ones, so their files are smaller, but decoding cost
follows the pixel count). Columns, side by side in one run:

* fetch: ``ImageFetcher`` over loopback HTTP with keep-alive, all pictures concurrently;
* Pillow, draft mode (libjpeg DCT scaling straight to about the needed size) vs full
  decode, one thread, the same resize and crop after;
* nvJPEG on the GPU (``model/gpu_decode.py``), a batch per call, when CUDA and torchvision
  are there; otherwise "n/a".

Prints a table and writes JSON (bench/results/image_path.json). Figures, not tests.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import tempfile
from pathlib import Path

import torch
from PIL import Image

from bench import REPO
from bench.machine import machine
from bench.timing import rate
from emostream.model import gpu_decode
from emostream.model.preprocessing import ImageTransform
from emostream.model.training.datasets import Dataset
from emostream.testing import serve_directory
from emostream.worker.address_guard import AddressGuard
from emostream.worker.image_fetch import ImageFetcher

SIZES = {"dataset (256 short side)": None, "1280x960": (1280, 960), "4032x3024": (4032, 3024)}


def pictures(n: int, size) -> list[bytes]:
    items = Dataset.load("mvsa-single").split("test")[:n]
    if size is None:
        return [i.image_path.read_bytes() for i in items]
    out = []
    for i in items:
        img = Image.open(i.image_path).convert("RGB").resize(size, Image.Resampling.BICUBIC)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--pictures", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--json", type=Path, default=REPO / "bench/results/image_path.json")
    args = ap.parse_args()

    draft, full = ImageTransform(draft=True), ImageTransform(draft=False)
    gpu = (
        gpu_decode.GpuJpegDecoder(draft, args.device) if gpu_decode.available(args.device) else None
    )
    fetcher = ImageFetcher(AddressGuard.from_strings(["127.0.0.0/8"]), concurrency=16)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        server = serve_directory(Path(tmp))
        loop = asyncio.new_event_loop()
        try:
            for label, size in SIZES.items():
                blobs = pictures(args.pictures, size)
                names = []
                for k, b in enumerate(blobs):
                    name = f"{label.split()[0]}-{k}.jpg"
                    (Path(tmp) / name).write_bytes(b)
                    names.append(f"{server.url}/{name}")

                def fetch(names=names):
                    got = loop.run_until_complete(fetcher.fetch_all(names))
                    assert all(f.data for f in got), [f.status for f in got]

                row = {
                    "pictures": label,
                    "mean_kb": sum(map(len, blobs)) / len(blobs) / 1024,
                    "fetch_per_s": rate(fetch, len(names), args.seconds),
                    "pillow_draft_per_s": rate(
                        lambda b=blobs: [draft.decode(x) for x in b], len(blobs), args.seconds
                    ),
                    "pillow_full_per_s": rate(
                        lambda b=blobs: [full.decode(x) for x in b], len(blobs), args.seconds
                    ),
                    "gpu_nvjpeg_per_s": None,
                }
                if gpu is not None:

                    def on_gpu(b=blobs):
                        gpu.decode_many(b)
                        torch.cuda.synchronize()

                    row["gpu_nvjpeg_per_s"] = rate(on_gpu, len(blobs), args.seconds)
                rows.append(row)
                print(row, flush=True)
        finally:
            loop.close()
            server.stop()

    info = machine(args.device)
    print(f"\nimage path on {info['cpu_model']} ({info['cores']} cores), images/s")
    print(
        "| pictures | mean kB | fetch (HTTP, 16 concurrent) | Pillow draft, 1 thread | "
        "Pillow full, 1 thread | draft speed-up | nvJPEG (GPU) |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        g = f"{r['gpu_nvjpeg_per_s']:.0f}" if r["gpu_nvjpeg_per_s"] else "n/a"
        print(
            f"| {r['pictures']} | {r['mean_kb']:.0f} | {r['fetch_per_s']:.0f} | "
            f"{r['pillow_draft_per_s']:.0f} | {r['pillow_full_per_s']:.0f} | "
            f"{r['pillow_draft_per_s'] / r['pillow_full_per_s']:.1f}x | {g} |"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": info, "rows": rows}, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
