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
from pathlib import Path

from .backbones import image_backbone
from .checkpoint import load_checkpoint
from .preprocessing import ImageTransform

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


class Weights(Enum):
    """Shipped weights. ``Weights.DEFAULT`` is what the worker and ``emostream classify`` load."""

    COMMONSPACE_V1 = "emostream-commonspace-v1"
    """Frozen encoders, Ekman-6 emotions without neutral, uncalibrated (kept for comparison
    and for shadowing)."""
    COMMONSPACE_V2 = "emostream-commonspace-v2"
    """Fine-tuned encoders (deltas beside it), emotion with neutral, calibrated heads."""
    DEFAULT = "emostream-commonspace-v2"  # same value: an alias of COMMONSPACE_V2

    @property
    def path(self) -> Path:
        return WEIGHTS_DIR / f"{self.value}.safetensors"

    @property
    def card_path(self) -> Path:
        return WEIGHTS_DIR / f"{self.value}.card.json"

    @property
    def card(self) -> dict:
        if not self.card_path.is_file():
            raise FileNotFoundError(f"no model card at {self.card_path}; run `emostream train`")
        return json.loads(self.card_path.read_text())

    @property
    def version(self) -> str:
        return self.card["version"]

    @property
    def transforms(self) -> ImageTransform:
        """The image transform of the encoder these heads were trained on."""
        return image_backbone(self.card["encoders"]["image"]).transform

    def load(self, device="cpu"):
        """(FusionModel, card)."""
        model, _ = load_checkpoint(self.path, device)
        return model, self.card


def file_version(path: Path, prefix: str) -> str:
    """``<prefix>-<first 8 hex of the file's sha256>``: changes whenever the weights do."""
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:8]
    return f"{prefix}-{digest}"
