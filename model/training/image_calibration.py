"""The activation ranges of the int8 image encoder (``runtime="onnx-int8-image"``).

    python -m emostream.model.training.image_calibration [--per-dataset 64]

Runs the served image encoder's fp32 ONNX graph over training pictures of every data set
with pictures and records each activation's min and max (ONNX Runtime's MinMax
calibration). The ranges (numbers only, no pictures) are written beside the weights,
``model/weights/<image encoder version>.int8-ranges.json``; a worker quantizes with them on
its first start (``model/onnx_runtime.py``). Remake them whenever the image weights change.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..classifier import EmotionClassifier
from ..encoder import Encoder
from ..onnx_runtime import image_fp32_file, image_ranges_path, quantize_image_int8
from .datasets import DATASETS, Dataset

PASS = 16
"""Pictures per calibration pass."""


def training_pictures(encoder: Encoder, per_dataset: int, data_dir: Path | None) -> list:
    """Decoded pictures: the first ``per_dataset`` of each data set's training split."""
    pics = []
    for name in DATASETS:
        items = [i for i in Dataset.load(name, data_dir).split("train") if i.image_path]
        for item in tqdm(items[:per_dataset], desc=f"pictures of {name}", leave=False):
            pics.append(encoder.decode(item.image_path.read_bytes()))
    if not pics:
        raise ValueError("no training pictures found: calibration needs the image data sets")
    return pics


class _Passes:
    """ONNX Runtime's CalibrationDataReader over normalised passes of pictures."""

    def __init__(self, encoder: Encoder, pics: list) -> None:
        norm = encoder.transform.normalise
        self._it = (
            {"pixels": norm(torch.stack(pics[s : s + PASS])).float().contiguous().numpy()}
            for s in range(0, len(pics), PASS)
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


def calibrate(encoder: Encoder, pics: list, out: Path) -> Path:
    """Measures the ranges of the encoder's fp32 graph over ``pics`` and writes them."""
    bb = encoder.image_backbone
    src = image_fp32_file(bb.version, bb.build, encoder.transform.crop)
    out.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:  # the int8 model made on the way is dropped
        quantize_image_int8(src, Path(tmp) / "int8.onnx", out, _Passes(encoder, pics))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--per-dataset", type=int, default=64, help="training pictures per set")
    ap.add_argument("--data-dir", type=Path, default=None)
    args = ap.parse_args(argv)
    encoder = EmotionClassifier(device="cpu", runtime="onnx").encoder  # the served encoders
    pics = training_pictures(encoder, args.per_dataset, args.data_dir)
    out = calibrate(encoder, pics, image_ranges_path(encoder.image_backbone.version))
    print(f"ranges of {len(pics)} training pictures -> {out}")


if __name__ == "__main__":
    main()
