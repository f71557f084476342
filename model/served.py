"""The served model: one common-space fusion model over every dataset.

Two heads: ``emotion`` (Ekman-6 distribution) and ``sentiment`` (negative / neutral /
positive). Every dataset supervises the heads it has labels for (``targets.py``); the
image-text pairs of mvsa-single and twitter-ii drive the ranking loss (negatives are
posts of another sentiment). Datasets are weighted so each contributes in proportion to
the square root of its size (GoEmotions would otherwise drown the rest).

Evaluation scores each dataset on the head its labels speak to, with the prediction
restricted to the classes that dataset can have (e.g. reddit-emotions: anger, disgust,
fear, joy; twitter-ii: negative, positive), under each modality condition it allows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .datasets import DATASETS, Dataset, Item
from .evaluation import condition_mask, plot_confusion, scores
from .feature_cache import FeatureCache, Features
from .fusion import FusionConfig, FusionModel, build
from .labels import EMOTIONS, SENTIMENTS, emotion_of
from .paper import PAIRED, conditions_for
from .targets import emotion_target, sentiment_target
from .training import TrainConfig, TrainingSet, predict, seed_everything, train

HEADS = {"emotion": len(EMOTIONS), "sentiment": len(SENTIMENTS)}


@dataclass(frozen=True)
class Task:
    """How a dataset is scored against the served model."""

    head: str
    classes: tuple[str, ...]

    def truth(self, item: Item) -> str | None:
        if self.head == "sentiment":
            return item.label
        return emotion_of(item.dataset, item.label)


TASKS: dict[str, Task] = {
    "reddit-emotions": Task("emotion", ("anger", "disgust", "fear", "joy")),
    "flickr-fi-text": Task("emotion", EMOTIONS),
    "goemotions": Task("emotion", EMOTIONS),  # rows labelled neutral are skipped
    "emotion6": Task("emotion", EMOTIONS),
    "mvsa-single": Task("sentiment", SENTIMENTS),
    "twitter-ii": Task("sentiment", ("negative", "positive")),
}


def training_set(items: list[Item], features: Features, balance: float = 0.5) -> TrainingSet:
    n = len(items)
    targets = {h: torch.zeros(n, c) for h, c in HEADS.items()}
    has = {h: torch.zeros(n, dtype=torch.bool) for h in HEADS}
    rank = torch.full((n,), -1, dtype=torch.long)
    for i, it in enumerate(items):
        for head, fn in (("emotion", emotion_target), ("sentiment", sentiment_target)):
            t = fn(it)
            if t is not None:
                targets[head][i] = torch.from_numpy(t)
                has[head][i] = True
        if it.dataset in PAIRED:
            rank[i] = SENTIMENTS.index(it.label)
    weight = torch.full((n,), float(n) ** (balance - 1.0))  # dataset total ~ n ** balance
    return TrainingSet(features, targets, has, rank, weight)


def _load(datasets, data_dir, cache, split):
    out = {}
    for name in datasets:
        items = Dataset.load(name, data_dir).split(split)
        out[name] = (items, cache.features(items))
    return out


def evaluate_dataset(
    model: FusionModel, items: list[Item], features: Features, condition: str, seed: int = 0
) -> dict | None:
    task = TASKS[items[0].dataset]
    truth = [task.truth(it) for it in items]
    keep = torch.tensor([t in task.classes for t in truth])
    rows, mask = condition_mask(features.mask, condition)
    rows = rows & keep
    if not rows.any():
        return None
    probs = predict(model, features, mask)[task.head]
    names = EMOTIONS if task.head == "emotion" else SENTIMENTS
    cols = [names.index(c) for c in task.classes]
    pred = probs[:, cols].argmax(-1)
    y = torch.tensor([task.classes.index(t) if t in task.classes else -1 for t in truth])
    return scores(y[rows].numpy(), pred[rows].numpy(), task.classes, seed=seed)


def val_score(model: FusionModel, val: dict) -> float:
    """Mean over datasets of accuracy with every modality present."""
    accs = [evaluate_dataset(model, it, f, "both")["accuracy"] for it, f in val.values()]
    return float(np.mean(accs))


def train_served(
    cache: FeatureCache,
    data_dir: Path | None = None,
    datasets=DATASETS,
    cfg: TrainConfig = TrainConfig(),
    hidden: int = 256,
    pool: str = "max",
    dropout: float = 0.3,
    balance: float = 0.5,
) -> tuple[FusionModel, dict]:
    """Train the served model; ``balance``: each dataset weighs in proportion to n ** balance."""
    train_parts = _load(datasets, data_dir, cache, "train")
    val = _load(datasets, data_dir, cache, "val")
    ts = TrainingSet.concat([training_set(it, f, balance) for it, f in train_parts.values()])
    ts.weight = ts.weight / ts.weight.mean()
    config = FusionConfig(
        kind="commonspace",
        text_dim=cache.encoder.text_backbone.dim,
        image_dim=cache.encoder.image_backbone.dim,
        heads=dict(HEADS),
        hidden=hidden,
        pool=pool,
        dropout=dropout,
    )
    seed_everything(cfg.seed)  # the initial weights too
    model, history = train(build(config), ts, lambda m: val_score(m, val), cfg, desc="served")
    info = {
        "datasets": {n: len(it) for n, (it, _) in train_parts.items()},
        "epochs_run": len(history),
        "best_epoch": int(max(history, key=lambda h: h["val"])["epoch"]),
        "val_score": max(h["val"] for h in history),
        "train_config": dict(cfg.__dict__),
        "head": {"hidden": hidden, "pool": pool, "dropout": dropout, "balance": balance},
    }
    return model, info


def evaluate_served(
    model: FusionModel,
    cache: FeatureCache,
    data_dir: Path | None = None,
    datasets=DATASETS,
    out_dir: Path | None = None,
) -> dict:
    """Test metrics per dataset and modality condition; confusion PNGs if ``out_dir``."""
    test = _load(datasets, data_dir, cache, "test")
    metrics: dict = {}
    for name, (items, feats) in test.items():
        ds = Dataset.load(name, data_dir)
        metrics[name] = {}
        for cond in conditions_for(ds):
            res = evaluate_dataset(model, items, feats, cond)
            metrics[name][cond] = res
            if res is not None and out_dir is not None:
                plot_confusion(
                    res,
                    out_dir / f"confusion-{name}-{cond}.png",
                    f"served model, {name}, {cond} ({TASKS[name].head})",
                )
    return metrics


def summary_markdown(metrics: dict) -> str:
    from .evaluation import fmt

    lines = [
        "| dataset | head | condition | n | accuracy [95% CI] | macro-F1 [95% CI] |",
        "|---|---|---|---:|---|---|",
    ]
    for name, conds in metrics.items():
        for cond, r in conds.items():
            if r is None:
                continue
            lines.append(
                f"| {name} | {TASKS[name].head} | {cond} | {r['n']} | {fmt(r)} | "
                f"{fmt(r, 'macro_f1')} |"
            )
    return "\n".join(lines) + "\n"


def compact(metrics: dict) -> dict:
    """The card's view: accuracy, macro-F1 and their intervals, no confusion matrices."""
    keys = ("n", "accuracy", "accuracy_ci95", "macro_f1", "macro_f1_ci95")
    return {
        name: {c: ({k: r[k] for k in keys} if r else None) for c, r in conds.items()}
        for name, conds in metrics.items()
    }


def write_report(metrics: dict, out_dir: Path, title: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "served.json").write_text(json.dumps(metrics, indent=1))
    (out_dir / "served.md").write_text(f"### {title}\n\n" + summary_markdown(metrics))
