"""Save and load a fusion model: one safetensors file, its config in the metadata.

Weights are stored as float16 (the heads are small and the loss in accuracy is nil; the
card's metrics are always measured on the model as loaded back from the file) and come
back as float32.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .fusion import FusionConfig, FusionModel, build

FORMAT = "emostream-fusion/1"


def save_checkpoint(model: FusionModel, path: Path, meta: dict | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    metadata = {
        "format": FORMAT,
        "config": json.dumps(model.config.to_dict()),
        "meta": json.dumps(meta or {}),
    }
    save_file(state, path, metadata=metadata)
    return path


def load_checkpoint(path: Path, device: str | torch.device = "cpu") -> tuple[FusionModel, dict]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    with safe_open(path, "pt") as fh:
        metadata = fh.metadata() or {}
        if metadata.get("format") != FORMAT:
            raise ValueError(
                f"{path} is not an {FORMAT} checkpoint (format={metadata.get('format')})"
            )
        state = {k: fh.get_tensor(k).float() for k in fh.keys()}
    model = build(FusionConfig(**json.loads(metadata["config"])))
    model.load_state_dict(state)
    return model.to(device).eval(), json.loads(metadata["meta"])
