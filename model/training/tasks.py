"""How each dataset is scored against the served model's heads, and the heads themselves.

A ``Task`` names the head a dataset's labels speak to and the classes that dataset can
have; ``evaluate_dataset`` scores one dataset on one task under one modality condition.
Training (``served_training``) and the image-text pairs (``pairs``) score through here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from emostream.model.experts import expert_spec
from emostream.model.fusion import FusionModel
from emostream.model.training.datasets import Dataset, Item
from emostream.model.training.evaluation import condition_mask, scores
from emostream.model.training.feature_cache import Features
from emostream.model.training.labels import EKMAN, EMOTIONS, SENTIMENTS, emotion_of, sentiment_of
from emostream.model.training.loop import predict

HEADS = {"emotion": len(EMOTIONS), "sentiment": len(SENTIMENTS)}


@dataclass(frozen=True)
class Task:
    """How a dataset is scored against a head of the served model."""

    head: str
    classes: tuple[str, ...]
    names: tuple[str, ...]
    """The head's output classes (``classes`` is the subset the dataset can have)."""

    truth_column: str | None = None
    """Score against this column of the item's extra fields instead of its label."""

    def truth(self, item: Item) -> str | None:
        if self.truth_column:
            return item.extra[self.truth_column]
        if self.head in ("sentiment",) or self.head.startswith("ds_"):
            return item.label
        return emotion_of(item.dataset, item.label)


TASKS: dict[str, Task] = {
    "reddit-emotions": Task("emotion", ("anger", "disgust", "fear", "joy"), EMOTIONS),
    "flickr-fi-text": Task("emotion", EKMAN, EMOTIONS),
    "goemotions": Task("emotion", EMOTIONS, EMOTIONS),  # Ekman + neutral, every row
    "emotion6": Task("emotion", EKMAN, EMOTIONS),
    "mvsa-single": Task("sentiment", SENTIMENTS, SENTIMENTS),
    "twitter-ii": Task("sentiment", ("negative", "positive"), SENTIMENTS),
}


EKMAN_GROUPING = "ekman grouping"
GOEMOTIONS_EKMAN = Task("emotion", EMOTIONS, EMOTIONS, truth_column="ekman_label")
"""GoEmotions scored against its published Ekman grouping (questions are surprise there),
beside the served mapping, so the figures stay comparable with published results."""
SUBGROUPS = ("own head", EKMAN_GROUPING)
"""Keys of a dataset's metrics that hold a group of conditions, not one condition."""


def dataset_head(name: str) -> str:
    return "ds_" + name.replace("-", "_")


def dataset_task(name: str, data_dir: Path | None = None) -> Task:
    """Scoring on the dataset's own head (its own label space)."""
    labels = Dataset.load(name, data_dir).labels
    return Task(dataset_head(name), labels, labels)


GATE = "domain"
"""The output that says which training dataset a post is like (the experts' gate)."""


def heads_for(datasets, data_dir: Path | None = None) -> dict[str, int]:
    return dict(HEADS) | {dataset_head(d): len(Dataset.load(d, data_dir).labels) for d in datasets}


EXPERT_WEIGHTS = {"emotion": 0.5, "sentiment": 1.0}
"""Per served head, the experts' weight in the log-linear pool with the served head (1: the
expert alone re-decides among its classes). Emotion pools at 0.5: the single-dataset emotion
heads read posts of no dataset worse than the served head (docs/model.md, "Experts")."""


def experts_for(datasets, data_dir: Path | None = None, weights=EXPERT_WEIGHTS) -> dict:
    """Each dataset's own head as an expert for the served head its labels speak to."""
    heads: dict[str, list] = {h: [] for h in HEADS}
    for g, name in enumerate(datasets):
        served = TASKS[name].head
        of = emotion_of if served == "emotion" else sentiment_of
        names = EMOTIONS if served == "emotion" else SENTIMENTS
        classes = [names.index(of(name, label)) for label in Dataset.load(name, data_dir).labels]
        heads[served].append((dataset_head(name), g, classes))
    return expert_spec(GATE, list(datasets), heads, weights)


def evaluate_dataset(
    model: FusionModel,
    items: list[Item],
    features: Features,
    condition: str,
    task: Task | None = None,
    seed: int = 0,
) -> dict | None:
    """Scores of one dataset on ``task`` (default: its served head) under a condition."""
    task = task or TASKS[items[0].dataset]
    truth = [task.truth(it) for it in items]
    keep = torch.tensor([t in task.classes for t in truth])
    rows, mask = condition_mask(features.mask, condition)
    rows = rows & keep
    if not rows.any():
        return None
    probs = predict(model, features, mask)[task.head]
    cols = [task.names.index(c) for c in task.classes]
    pred = probs[:, cols].argmax(-1)
    y = torch.tensor([task.classes.index(t) if t in task.classes else -1 for t in truth])
    return scores(y[rows].numpy(), pred[rows].numpy(), task.classes, seed=seed)
