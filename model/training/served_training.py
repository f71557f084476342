"""The served model: one common-space fusion model over every dataset.

Two served heads: ``emotion`` (Ekman-6 + neutral) and ``sentiment`` (negative / neutral /
positive). Every dataset supervises the served heads it has labels for (``targets.py``)
and, besides, a head of its own over its own label space (``ds_<dataset>``), so no
dataset has to squeeze its labels into another's during training. The image-text pairs
of mvsa-single and twitter-ii drive the ranking loss (negatives are posts of another
sentiment). Datasets are weighted so each contributes in proportion to the square root
of its size (GoEmotions would otherwise drown the rest), and inside a dataset classes are
weighted by the inverse square root of their frequency.

Evaluation scores each dataset on the head its labels speak to, with the prediction
restricted to the classes that dataset can have (e.g. reddit-emotions: anger, disgust,
fear, joy; twitter-ii: negative, positive), under each modality condition it allows.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from emostream.model.fusion import FusionConfig, FusionModel, build, reconfigured
from emostream.model.training.datasets import DATASETS, Dataset, Item
from emostream.model.training.evaluation import plot_confusion
from emostream.model.training.feature_cache import FeatureCache, Features
from emostream.model.training.gate import fit_gate
from emostream.model.training.labels import EMOTIONS, SENTIMENTS
from emostream.model.training.loop import TrainConfig, TrainingSet, seed_everything, train
from emostream.model.training.losses import class_weights
from emostream.model.training.pairs import NEEDS as PAIRS_NEED
from emostream.model.training.pairs import (
    TWEETS,
    fit_text_weight,
    pair_sets,
    pooled_score,
    sentiment_pair_sets,
    tweets_and_pairs_score,
)
from emostream.model.training.paper import PAIRED, conditions_for
from emostream.model.training.targets import (
    dataset_target,
    emotion_target,
    label_space,
    sentiment_target,
)
from emostream.model.training.tasks import (
    EKMAN_GROUPING,
    EXPERT_WEIGHTS,
    GOEMOTIONS_EKMAN,
    HEADS,
    SUBGROUPS,
    TASKS,
    dataset_head,
    dataset_task,
    evaluate_dataset,
    experts_for,
    heads_for,
)


def training_set(
    items: list[Item],
    features: Features,
    heads: dict[str, int],
    labels: tuple[str, ...],
    balance: float = 0.5,
    restrict: bool = True,
) -> TrainingSet:
    """``restrict``: each served head's softmax spans only the dataset's label space."""
    n = len(items)
    own = dataset_head(items[0].dataset)
    targets = {h: torch.zeros(n, c) for h, c in heads.items()}
    has = {h: torch.zeros(n, dtype=torch.bool) for h in heads}
    rank = torch.full((n,), -1, dtype=torch.long)
    for i, it in enumerate(items):
        for head, fn in (("emotion", emotion_target), ("sentiment", sentiment_target)):
            t = fn(it)
            if t is not None:
                targets[head][i] = torch.from_numpy(t)
                has[head][i] = True
        targets[own][i] = torch.from_numpy(dataset_target(it, labels))
        has[own][i] = True
        if it.dataset in PAIRED:
            rank[i] = SENTIMENTS.index(it.label)
    per_class = class_weights(targets[own])  # mean row weight 1
    weight = (targets[own] * per_class).sum(1) * float(n) ** (balance - 1.0)
    allowed = {}
    if restrict:
        space = label_space(items[0].dataset, labels)
        for head, names in (("emotion", EMOTIONS), ("sentiment", SENTIMENTS)):
            row = torch.tensor([c in space[head] for c in names])
            allowed[head] = row.expand(n, -1).clone()
    return TrainingSet(features, targets, has, rank, weight, allowed)


def _load(datasets, data_dir, cache, split) -> dict[str, tuple[list[Item], Features]]:
    out = {}
    for name in datasets:
        items = Dataset.load(name, data_dir).split(split)
        out[name] = (items, cache.features(items))
    return out


def val_score(model: FusionModel, val: dict) -> float:
    """Mean over datasets and both kinds of head of (accuracy + macro-F1) / 2, both modalities."""
    out = []
    for name, (items, feats) in val.items():
        for task in (TASKS[name], dataset_task(name)):
            r = evaluate_dataset(model, items, feats, "both", task)
            if r is not None:
                out.append((r["accuracy"] + r["macro_f1"]) / 2)
    return float(np.mean(out))


def train_served(
    cache: FeatureCache,
    data_dir: Path | None = None,
    datasets=DATASETS,
    cfg: TrainConfig = TrainConfig(modality_dropout=0.3),
    hidden: int = 256,
    pool: str = "max",
    dropout: float = 0.3,
    balance: float = 0.5,
    restrict: bool = True,
    experts: bool = True,
    expert_weights: dict[str, float] | None = None,
    modality_pool: bool = True,
) -> tuple[FusionModel, dict]:
    """Train the served model; ``balance``: each dataset weighs in proportion to n ** balance;
    ``restrict``: a served head's softmax spans only the row's dataset's label space;
    ``experts``: served heads mixed from the datasets' own heads (``experts.py``), with
    ``expert_weights`` (default ``EXPERT_WEIGHTS``); ``modality_pool``: emotion on posts with
    both modalities pools the text-alone and picture-alone answers (``pairs.py``)."""
    train_parts = _load(datasets, data_dir, cache, "train")
    val = _load(datasets, data_dir, cache, "val")
    heads = heads_for(datasets, data_dir)
    ts = TrainingSet.concat(
        [
            training_set(it, f, heads, Dataset.load(n, data_dir).labels, balance, restrict)
            for n, (it, f) in train_parts.items()
        ]
    )
    ts.weight = ts.weight / ts.weight.mean()
    config = FusionConfig(
        kind="commonspace",
        text_dim=cache.encoder.text_backbone.dim,
        image_dim=cache.encoder.image_backbone.dim,
        heads=heads,
        hidden=hidden,
        pool=pool,
        dropout=dropout,
    )
    seed_everything(cfg.seed)  # the initial weights too
    model, history = train(build(config), ts, lambda m: val_score(m, val), cfg, desc="served")
    gate_history: list[dict] = []
    if experts:  # second stage: the gate alone, on the trained heads
        spec = experts_for(datasets, data_dir, expert_weights or EXPERT_WEIGHTS)
        parts = [f for _, f in train_parts.values()]
        gate_cfg = TrainConfig(lr=1e-3, modality_dropout=0.5, aux_weight=0.0, seed=cfg.seed)
        model, gate_history = fit_gate(
            model, spec, parts, lambda m: val_score(m, val), gate_cfg, desc="gate"
        )
    pooled: dict | None = None
    if modality_pool and set(PAIRS_NEED) <= set(datasets):  # emotion of text + picture
        model, pooled = with_modality_pool(model, cache, data_dir)
    info = {
        "datasets": {n: len(it) for n, (it, _) in train_parts.items()},
        "epochs_run": len(history),
        "best_epoch": int(max(history, key=lambda h: h["val"])["epoch"]),
        "val_score": max(h["val"] for h in history),
        "train_config": dict(cfg.__dict__),
        "head": {"hidden": hidden, "pool": pool, "dropout": dropout, "balance": balance},
        "label_spaces": restrict,
        "experts": experts,
        "expert_weights": (expert_weights or EXPERT_WEIGHTS) if experts else None,
        "gate": {
            "epochs_run": len(gate_history),
            "val_score": max((h["val"] for h in gate_history), default=None),
        },
        "modality_pool": pooled,
    }
    return model, info


def with_modality_pool(
    model: FusionModel, cache: FeatureCache, data_dir: Path | None = None
) -> tuple[FusionModel, dict]:
    """A copy of ``model`` whose heads answer posts with both modalities by the weighted
    mean of their text-alone and picture-alone answers (``pairs.py``), sentiment keeping
    its fused answer for posts whose text reads like a tweet of ``TWEETS`` (the gate's
    weight on them); each head's text weight fitted on val; and the weights with every
    weight's val score."""
    emotion, e_table = fit_text_weight(pooled_score(model, pair_sets(cache, data_dir, "val")))
    info: dict = {"emotion": emotion, "val_mean_accuracy": e_table}
    if not set(TWEETS) <= set(model.config.experts.get("domains", [])):
        # no gate that knows the tweets: sentiment stays fused
        return reconfigured(model, modality_pool={"emotion": emotion}), info
    fused_for = {"sentiment": list(TWEETS)}
    pools = {"emotion": emotion, "sentiment": 1.0}
    pooled = reconfigured(model, modality_pool=pools, fused_for=fused_for)
    val = sentiment_pair_sets(cache, data_dir, "val")
    sentiment, s_table = fit_text_weight(tweets_and_pairs_score(pooled, val))
    pooled = reconfigured(pooled, modality_pool={"emotion": emotion, "sentiment": sentiment})
    info |= {"sentiment": sentiment, "fused_for": fused_for, "sentiment_val_score": s_table}
    return pooled, info


def evaluate_served(
    model: FusionModel,
    cache: FeatureCache,
    data_dir: Path | None = None,
    datasets=DATASETS,
    out_dir: Path | None = None,
    split: str = "test",
) -> dict:
    """Metrics per dataset, head kind and modality condition; confusion PNGs if ``out_dir``.

    ``metrics[dataset][condition]`` scores the served head (what users get);
    ``metrics[dataset]["own head"][condition]`` the dataset's own training head.
    """
    parts = _load(datasets, data_dir, cache, split)
    metrics: dict = {}
    for name, (items, feats) in parts.items():
        ds = Dataset.load(name, data_dir)
        metrics[name] = {}
        own = metrics[name]["own head"] = {}
        for cond in conditions_for(ds):
            res = evaluate_dataset(model, items, feats, cond)
            metrics[name][cond] = res
            own[cond] = evaluate_dataset(model, items, feats, cond, dataset_task(name, data_dir))
            if name == "goemotions":
                ekman = metrics[name].setdefault(EKMAN_GROUPING, {})
                ekman[cond] = evaluate_dataset(model, items, feats, cond, GOEMOTIONS_EKMAN)
            if res is not None and out_dir is not None:
                plot_confusion(
                    res,
                    out_dir / f"confusion-{name}-{cond}.png",
                    f"served model, {name}, {cond} ({TASKS[name].head})",
                )
    return metrics


def summary_markdown(metrics: dict) -> str:
    from emostream.model.training.evaluation import fmt

    lines = [
        "| dataset | head | condition | n | accuracy [95% CI] | macro-F1 [95% CI] |",
        "|---|---|---|---:|---|---|",
    ]
    for name, conds in metrics.items():
        groups = [(TASKS[name].head, conds)] + [(g, conds[g]) for g in SUBGROUPS if g in conds]
        for head, group in groups:
            for cond, r in group.items():
                if r is None or cond in SUBGROUPS:
                    continue
                lines.append(
                    f"| {name} | {head} | {cond} | {r['n']} | {fmt(r)} | {fmt(r, 'macro_f1')} |"
                )
    return "\n".join(lines) + "\n"


def compact(metrics: dict) -> dict:
    """The card's view: accuracy, macro-F1 and their intervals, no confusion matrices."""
    keys = ("n", "accuracy", "accuracy_ci95", "macro_f1", "macro_f1_ci95")

    def one(group: dict) -> dict:
        return {
            c: (one(r) if c in SUBGROUPS else {k: r[k] for k in keys} if r else None)
            for c, r in group.items()
        }

    return {name: one(conds) for name, conds in metrics.items()}


def write_report(metrics: dict, out_dir: Path, title: str, meta: dict | None = None) -> None:
    """``served.json`` (metrics and ``meta``: data dir, split, model version) and ``served.md``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {"title": title, "meta": meta or {}, "metrics": metrics}
    (out_dir / "served.json").write_text(json.dumps(doc, indent=1))
    (out_dir / "served.md").write_text(f"### {title}\n\n" + summary_markdown(metrics))


@torch.no_grad()
def _head_logits(model: FusionModel, parts: dict, head: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of a served head and the argmax of its target, over every row with a target."""
    fn = emotion_target if head == "emotion" else sentiment_target
    logits, labels = [], []
    model.eval()
    for items, feats in parts.values():
        targets = [fn(it) for it in items]
        rows = [i for i, t in enumerate(targets) if t is not None and feats.mask[i].any()]
        if not rows:
            continue
        f = feats.select(rows)
        logits.append(model(f.text, f.image, f.mask).logits[head].float())
        labels.append(torch.tensor([int(np.argmax(targets[i])) for i in rows]))
    return torch.cat(logits), torch.cat(labels)


def calibrate(
    model: FusionModel,
    cache: FeatureCache,
    data_dir: Path | None = None,
    datasets=DATASETS,
    out_dir: Path | None = None,
) -> dict:
    """Temperature per served head, fitted on val; ECE on test before and after."""
    from emostream.model.training.calibration import fit_temperature, plot_reliability, reliability

    val = _load(datasets, data_dir, cache, "val")
    test = _load(datasets, data_dir, cache, "test")
    out = {}
    for head in HEADS:
        t = fit_temperature(*_head_logits(model, val, head))
        logits, labels = _head_logits(model, test, head)
        before = reliability(logits.softmax(-1).numpy(), labels.numpy())
        after = reliability((logits / t).softmax(-1).numpy(), labels.numpy())
        out[head] = {
            "temperature": round(t, 4),
            "ece_test_before": round(before["ece"], 4),
            "ece_test_after": round(after["ece"], 4),
            "n_test": int(labels.numel()),
        }
        if out_dir is not None:
            title = f"{head} head, test splits (T = {t:.2f} fitted on val)"
            plot_reliability(before, after, out_dir / f"reliability-{head}.png", title)
    return out
