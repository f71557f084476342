"""The encoders on ONNX Runtime: the fast CPU path.

``runtime="onnx"`` runs both encoders in fp32 on ONNX Runtime: the same features as torch
(to about 1e-5) and, measured side by side on 2 cores (``python -m bench.cpu_runtime``),
faster, the image encoder most. ``runtime="onnx-int8"`` also stores the text encoder's
weight matrices as int8 (dynamic quantization): faster again on text, but it moves about
2-3% of top labels and has cost up to 2 points on a test split, depending on the weights
(docs/performance.md), so it is a choice for text-heavy feeds, not the default. The plain
torch path stays as ``runtime="eager"``. ``runtime="onnx-int8-image"`` runs the image
encoder in static int8 (activation ranges shipped beside the weights): about twice the
pictures per second, but it moves about 5% of the top labels of image-only posts
(docs/performance.md), so it is a setting, not the default. Session threads sleep between runs
(``EMOSTREAM_ORT_SPIN=1``: they spin, ONNX Runtime's default; see ``_session``).

The ONNX files are derived from the shipped weights, not shipped: the first start exports
them (a few seconds) into ``EMOSTREAM_ONNX_DIR`` (default ``~/.cache/emostream/onnx``),
named by the encoder's version, and later starts load them. ``emostream export-onnx``
builds them ahead of time (the Dockerfiles do, so containers start warm).
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

log = logging.getLogger("emostream.model")

RUNTIMES = ("eager", "onnx", "onnx-int8", "onnx-int8-image")
INT8_RECIPE = "q2"
"""Names the int8 quantization recipe (``_quantize_int8``) in file names and feature-cache
keys: change it whenever the recipe changes, so no file made by another recipe is read."""


def onnx_dir() -> Path:
    return Path(os.environ.get("EMOSTREAM_ONNX_DIR") or "~/.cache/emostream/onnx").expanduser()


def _session(path: Path):
    """A CPU session. Its threads sleep between runs instead of spinning: the text and the
    image session (and torch, for the head and the image batch) take turns on the same
    cores, and a session whose idle threads spin for a while after each run slows the
    next one down. Measured on 2 cores (``python -m bench.cpu_runtime``, docs/performance.md).
    ``EMOSTREAM_ORT_SPIN=1`` restores ONNX Runtime's default (spinning)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: not a warning per unused QDQ constant
    spin = os.environ.get("EMOSTREAM_ORT_SPIN", "0")
    if spin not in ("0", "1"):
        raise ValueError(f"EMOSTREAM_ORT_SPIN must be 0 or 1, not {spin!r}")
    options.add_session_config_entry("session.intra_op.allow_spinning", spin)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _export(module: nn.Module, args: tuple, path: Path, names: list[str], dynamic: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            args,
            str(tmp),
            input_names=names,
            output_names=["features"],
            dynamic_axes=dynamic,
            opset_version=17,
            dynamo=False,
        )
    tmp.replace(path)  # atomic: a concurrent worker never reads half a file


@contextlib.contextmanager
def _quiet():
    """ONNX Runtime's quantizer without its warnings and its pre-processing hint."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("root").setLevel(logging.ERROR)
        yield


def text_matmuls(src: Path) -> list[str]:
    """The names of the weight-matrix MatMuls of an exported MiniLM, in graph order."""
    import onnx

    return [n.name for n in onnx.load(str(src)).graph.node if n.op_type == "MatMul"]


def kept_fp32(name: str) -> bool:
    """Recipe q2: the feed-forward output projections stay fp32. Of the variants measured
    on test texts (all int8, attention only, these kept), this kept the most top labels for
    its speed (97.9% on reddit-emotions, 97.0% on goemotions)."""
    return "/output/dense/" in name and "/attention/" not in name


def _quantize_int8(src: Path, dst: Path, keep: Callable[[str], bool] = kept_fp32) -> None:
    """Dynamic int8 quantization of the weight matrices, one scale per output channel;
    the MatMuls ``keep`` names stay fp32."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = dst.with_suffix(f".{os.getpid()}.tmp")
    with _quiet():
        quantize_dynamic(
            str(src),
            str(tmp),
            weight_type=QuantType.QInt8,
            per_channel=True,
            nodes_to_exclude=[n for n in text_matmuls(src) if keep(n)],
            extra_options={"MatMulConstBOnly": True},
        )
    tmp.replace(dst)


class _TextCore(nn.Module):
    """Token ids and mask -> features: what is exported of a MiniLM (the tokenizer stays
    in Python)."""

    def __init__(self, net) -> None:
        super().__init__()
        self.net = net

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.net.upper(self.net.lower(ids, mask), mask)


def text_encoder(version: str, build: Callable[[], nn.Module], int8: bool = False):
    """``encode(texts, batch_size) -> (N, dim)`` on ONNX Runtime (int8 weights with
    ``int8``). ``build`` gives the MiniLM (``model/text_model.py``) the first time the
    file is made."""
    fp32 = onnx_dir() / f"{version}.fp32.onnx"
    path = onnx_dir() / f"{version}.int8-{INT8_RECIPE}.onnx" if int8 else fp32
    net = None
    if not path.is_file():
        log.info("exporting %s to ONNX under %s: once", path.name, path.parent)
        net = build()
        if not fp32.is_file():
            tok = net.tokenize(["an example", "a second, longer example text"])
            dynamic = {"ids": {0: "batch", 1: "tokens"}, "mask": {0: "batch", 1: "tokens"}}
            args = (tok["input_ids"], tok["attention_mask"])
            _export(_TextCore(net), args, fp32, ["ids", "mask"], dynamic)
        if int8:
            _quantize_int8(fp32, path)
    session = _session(path)
    tokenizer = net.tokenizer if net is not None else _tokenizer()

    def encode(texts: list[str], batch_size: int) -> torch.Tensor:
        from .text_model import MAX_TOKENS

        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding
        parts: list[tuple[list[int], np.ndarray]] = []
        for s in range(0, len(order), batch_size):
            rows = order[s : s + batch_size]
            tok = tokenizer(
                [texts[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=MAX_TOKENS,
                return_tensors="np",
            )
            feed = {
                "ids": tok["input_ids"].astype(np.int64),
                "mask": tok["attention_mask"].astype(np.int64),
            }
            parts.append((rows, session.run(None, feed)[0]))
        out = np.empty((len(texts), parts[0][1].shape[1]), dtype=np.float32)
        for rows, feats in parts:
            out[rows] = feats
        return torch.from_numpy(out)

    return encode


def _tokenizer():
    from transformers import AutoTokenizer

    from .text_model import _base_path

    return AutoTokenizer.from_pretrained(str(_base_path()))


IMAGE_INT8_RECIPE = "s1"
"""Names the static int8 recipe of the image encoder (``quantize_image_int8``) in file
names and feature-cache keys; change it whenever the recipe changes."""


def image_ranges_path(version: str) -> Path:
    """The activation ranges of an image encoder, shipped beside its weights: made once from
    training pictures (``python -m emostream.model.training.image_calibration``), so a worker
    quantizes without any data set."""
    weights_dir = Path(__file__).resolve().parent / "weights"  # model/weights.py's WEIGHTS_DIR
    return weights_dir / f"{version}.int8-ranges.json"


def _check_ranges(model_path: Path, ranges: Path) -> None:
    """Refuses ranges that were measured on another export of the network: every tensor they
    name is in the graph, and every convolution's input has a range."""
    import json

    import onnx

    if not ranges.is_file():
        raise FileNotFoundError(
            f"no int8 activation ranges at {ranges}: make them with "
            "python -m emostream.model.training.image_calibration"
        )
    named = set(json.loads(ranges.read_text())["data"])
    graph = onnx.load(str(model_path)).graph
    tensors = {v for n in graph.node for v in [*n.input, *n.output]}
    conv_inputs = {n.input[0] for n in graph.node if n.op_type == "Conv"}
    if not named <= tensors or not conv_inputs <= named:
        raise ValueError(
            f"the activation ranges {ranges.name} do not match {model_path.name} (another "
            "export of the network): remake them with "
            "python -m emostream.model.training.image_calibration"
        )


def quantize_image_int8(src: Path, dst: Path, ranges: Path, pictures=None) -> None:
    """Static int8 (QDQ): weights per output channel (int8), activations (uint8) with the
    min/max ranges in ``ranges``. With ``pictures`` (ONNX Runtime's CalibrationDataReader)
    the ranges are measured on them first and written to ``ranges``
    (``model/training/image_calibration.py``); without, the shipped ranges are checked
    against the export and used."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if pictures is None:
        _check_ranges(src, ranges)
    tmp = dst.with_suffix(f".{os.getpid()}.tmp")
    with _quiet():
        quantize_static(
            str(src),
            str(tmp),
            pictures,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            calibration_cache_path=str(ranges),
        )
    tmp.replace(dst)


def image_fp32_file(version: str, build: Callable[[], nn.Module], size: int) -> Path:
    """The image encoder's fp32 ONNX file, exported on first use."""
    path = onnx_dir() / f"{version}.fp32.onnx"
    if not path.is_file():
        log.info("exporting %s to ONNX under %s: once", version, path.parent)
        example = torch.zeros(2, 3, size, size)
        _export(build(), (example,), path, ["pixels"], {"pixels": {0: "batch"}})
    return path


class ImageSession:
    """Normalised (B, 3, H, W) -> (B, dim) features on ONNX Runtime, fp32 (or int8 with
    ``int8``: static quantization with the ranges shipped beside the weights)."""

    def __init__(
        self, version: str, build: Callable[[], nn.Module], size: int, int8: bool = False
    ) -> None:
        path = image_fp32_file(version, build, size)
        if int8:
            fp32, path = path, onnx_dir() / f"{version}.int8-{IMAGE_INT8_RECIPE}.onnx"
            if not path.is_file():
                log.info("quantizing %s to int8 under %s: once", version, path.parent)
                quantize_image_int8(fp32, path, image_ranges_path(version))
        self.session = _session(path)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        pixels = x.float().contiguous().numpy()  # NCHW, whatever layout came in
        return torch.from_numpy(self.session.run(None, {"pixels": pixels})[0])
