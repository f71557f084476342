"""emostream: a streaming image + text emotion classifier for social-media posts.

The public API, importable from the top:

    from emostream import EmotionClassifier, PostInput
    [p] = EmotionClassifier().classify([PostInput(text="what a day")])

The pipeline stages are subpackages: ``emostream.ingest`` (sources -> Kafka),
``emostream.worker`` (Kafka -> model -> Redis) and ``emostream.model`` (encoders, fusion,
training, shipped weights). Names are imported on first use, so ``import emostream``
stays cheap for the ingest services, which never load torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "EmotionClassifier": "emostream.model.classifier",
    "Prediction": "emostream.model.classifier",
    "PostInput": "emostream.model.encoder",
    "Weights": "emostream.model.weights",
    "Post": "emostream.record",
    "RecordError": "emostream.record",
    "Settings": "emostream.ingest.settings",
    "SettingError": "emostream.ingest.settings",
    "WorkerSettings": "emostream.worker.settings",
}

__all__ = [
    "EmotionClassifier",
    "IngestSettings",
    "KafkaSettings",
    "Post",
    "PostInput",
    "Prediction",
    "RecordError",
    "SettingError",
    "Weights",
    "WorkerSettings",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and editors
    from emostream.ingest.settings import IngestSettings, SettingError
    from emostream.model.classifier import EmotionClassifier, Prediction
    from emostream.model.encoder import PostInput
    from emostream.model.weights import Weights
    from emostream.record import Post, RecordError
    from emostream.worker.settings import WorkerSettings


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'emostream' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
