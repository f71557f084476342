"""Shipped weights, in the manner of torchvision's weights enums.

Each member names a safetensors file in ``model/weights/`` and a card (JSON) beside it.
The card carries the labels, the encoders the heads were trained on (and so the image
transform), the training data and the test metrics per dataset and modality condition.
Its ``version`` travels with every prediction.

    >>> w = Weights.DEFAULT
    >>> w.version, w.card["metrics"]["mvsa-single"]["both"]["accuracy"]
"""

from __future__ import annotations

import hashlib
import json
from enum import Enum
from functools import cached_property
from pathlib import Path

from .backbones import image_backbone
from .checkpoint import load_checkpoint
from .preprocessing import ImageTransform

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


class WeightsEntry:
    def __init__(self, stem: str) -> None:
        self.stem = stem

    @property
    def path(self) -> Path:
        return WEIGHTS_DIR / f"{self.stem}.safetensors"

    @property
    def card_path(self) -> Path:
        return WEIGHTS_DIR / f"{self.stem}.card.json"

    @cached_property
    def card(self) -> dict:
        if not self.card_path.is_file():
            raise FileNotFoundError(f"no model card at {self.card_path}; run `emostream train`")
        return json.loads(self.card_path.read_text())

    @property
    def version(self) -> str:
        return self.card["version"]

    @property
    def transforms(self) -> ImageTransform:
        return image_backbone(self.card["encoders"]["image"]).transform

    def load(self, device="cpu"):
        """(FusionModel, card)."""
        model, _ = load_checkpoint(self.path, device)
        return model, self.card


class Weights(Enum):
    COMMONSPACE_V1 = WeightsEntry("emostream-commonspace-v1")
    DEFAULT = COMMONSPACE_V1  # an alias: Weights.DEFAULT is Weights.COMMONSPACE_V1

    def __getattr__(self, name):  # delegate path/card/version/transforms/load
        return getattr(self.value, name)


def file_version(path: Path, prefix: str) -> str:
    """``<prefix>-<first 8 hex of the file's sha256>``: changes whenever the weights do."""
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:8]
    return f"{prefix}-{digest}"
