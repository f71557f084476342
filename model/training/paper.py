"""Reproduce the paper's tables: every model on every dataset, and the missing-modality table.

For each dataset: train each model kind on ``train`` (its own labels), keep the epoch with
the best ``val`` accuracy, report ``test`` accuracy and macro-F1 with bootstrap 95%
intervals under each modality condition the dataset allows. On the paired datasets
(mvsa-single, twitter-ii) common-space fusion is also trained without / with modality
dropout, to show whether it helps. Writes ``paper.json``, ``paper.md`` and confusion
matrices of the common-space model to the output folder.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import torch
from tqdm import tqdm

from emostream.model.checkpoint import load_checkpoint, save_checkpoint
from emostream.model.fusion import KINDS, FusionConfig, build
from emostream.model.training.datasets import DATASETS, Dataset, default_data_dir
from emostream.model.training.evaluation import condition_mask, fmt, plot_confusion, scores
from emostream.model.training.feature_cache import FeatureCache, Features
from emostream.model.training.loop import TrainConfig, TrainingSet, predict, seed_everything, train

PAIRED = ("mvsa-single", "twitter-ii")


def split_data(ds: Dataset, cache: FeatureCache, split: str) -> tuple[Features, list[int]]:
    items = ds.split(split)
    return cache.features(items), [ds.label_index(i.label) for i in items]


def conditions_for(ds: Dataset) -> tuple[str, ...]:
    return ("both", "text", "image") if len(ds.modalities) == 2 else ("both",)


def applicable(kind: str, ds: Dataset, condition: str) -> bool:
    """Unimodal models only answer when their modality is there."""
    seen = ds.modalities if condition == "both" else (condition,)
    return kind not in ("text", "image") or kind in seen


def accuracy_on(model, features: Features, y: list[int], condition: str = "both") -> float:
    rows, mask = condition_mask(features.mask, condition)
    pred = predict(model, features, mask)["label"].argmax(-1)
    yt = torch.tensor(y)
    return float((pred[rows] == yt[rows]).float().mean())


def evaluate(model, features, y, labels, condition, seed=0) -> dict:
    rows, mask = condition_mask(features.mask, condition)
    pred = predict(model, features, mask)["label"].argmax(-1)
    yt = torch.tensor(y)
    return scores(yt[rows].numpy(), pred[rows].numpy(), labels, seed=seed)


def train_one(kind: str, ds: Dataset, data: dict, cfg: TrainConfig, options=None, progress=True):
    train_f, train_y = data["train"]
    val_f, val_y = data["val"]
    config = FusionConfig(
        kind=kind,
        text_dim=train_f.text.shape[1],
        image_dim=train_f.image.shape[1],
        heads={"label": len(ds.labels)},
        **(options or {}),
    )
    seed_everything(cfg.seed)  # the initial weights too
    model = build(config)
    ts = TrainingSet.from_labels(train_f, train_y, len(ds.labels))
    model, history = train(
        model,
        ts,
        lambda m: accuracy_on(m, val_f, val_y),
        cfg,
        progress=progress,
        desc=f"{ds.name}/{kind}",
    )
    return model, history


def run(
    data_dir: Path | None,
    out_dir: Path,
    cache: FeatureCache,
    datasets=DATASETS,
    kinds=KINDS,
    cfg: TrainConfig = TrainConfig(),
    split: str = "test",
    models_dir: Path | None = None,
) -> dict:
    """Scores on ``split``. Trained models are kept in ``models_dir`` (per encoder version):
    a second run, e.g. on another split, loads them instead of training again."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict = {
        "config": cfg.__dict__,
        "encoder": cache.encoder.version,
        "split": split,
        "data_dir": str(data_dir or default_data_dir()),
        "datasets": {},
    }
    for name in tqdm(datasets, desc="datasets", unit="dataset"):
        ds = Dataset.load(name, data_dir)
        data = {s: split_data(ds, cache, s) for s in dict.fromkeys(("train", "val", split))}
        test_f, test_y = data[split]
        entry: dict = {"labels": list(ds.labels), "n_test": len(test_y), "models": {}}
        runs: list[tuple[str, TrainConfig, dict]] = [(k, cfg, {}) for k in kinds]
        if name in PAIRED and "commonspace" in kinds:
            runs.append(("commonspace+mdrop", replace(cfg, modality_dropout=0.3), {}))
            # the paper's exact head: image projected, text vector as is, no normalisation
            plain = {"project_text": False, "normalise": False}
            runs.append(("joint (paper head)", cfg, plain))
            runs.append(("commonspace (paper head)", cfg, plain))
        for label, run_cfg, options in runs:
            kind = label.split(" ")[0].split("+")[0]
            if len(ds.modalities) == 1 and kind in ("text", "image") and kind not in ds.modalities:
                continue
            slug = label.replace(" ", "_").replace("(", "").replace(")", "")
            saved = models_dir / name / f"{slug}.safetensors" if models_dir else None
            model, history = _trained(saved, kind, ds, data, run_cfg, options)
            per_cond: dict[str, dict | None] = {}
            for cond in conditions_for(ds):
                if not applicable(kind, ds, cond):
                    per_cond[cond] = None
                    continue
                res = evaluate(model, test_f, test_y, ds.labels, cond)
                per_cond[cond] = res
                if kind == "commonspace" and label == kind:
                    plot_confusion(
                        res,
                        out_dir / f"confusion-{name}-{cond}.png",
                        f"common-space, {name}, {cond}",
                    )
            entry["models"][label] = {"epochs": len(history), "test": per_cond}
        results["datasets"][name] = entry
        (out_dir / "paper.json").write_text(json.dumps(results, indent=1))
    (out_dir / "paper.md").write_text(markdown(results))
    return results


def _trained(saved: Path | None, kind, ds, data, cfg, options):
    """The model trained on ``train`` (best epoch on ``val``), from ``saved`` if there."""
    if saved is not None and saved.is_file():
        model, meta = load_checkpoint(saved)
        return model, meta.get("history", [])
    model, history = train_one(kind, ds, data, cfg, options)
    if saved is not None:
        save_checkpoint(model, saved, {"history": history})
    return model, history


def markdown(results: dict) -> str:
    ds_names = list(results["datasets"])
    split = results.get("split", "test")
    kinds = [k for k in KINDS]
    lines = [
        f"### Every model on every dataset ({split} accuracy [bootstrap 95% CI], macro-F1)",
        "",
        "| model | " + " | ".join(f"{d} ({'+'.join(_mods(d))})" for d in ds_names) + " |",
        "|---|" + "---|" * len(ds_names),
    ]
    for k in kinds:
        cells = []
        for d in ds_names:
            m = results["datasets"][d]["models"].get(k)
            r = m["test"]["both"] if m else None
            cells.append(f"{fmt(r)} / {r['macro_f1']:.3f}" if r else "n/a")
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    paired = [d for d in ds_names if d in PAIRED]
    if paired:
        lines += [
            "",
            f"### Missing modality ({split} accuracy [95% CI]; "
            "each model given both, text only, image only)",
            "",
            "| model | "
            + " | ".join(f"{d}: {c}" for d in paired for c in ("both", "text", "image"))
            + " |",
            "|---|" + "---|" * (3 * len(paired)),
        ]
        extra = ["commonspace+mdrop", "joint (paper head)", "commonspace (paper head)"]
        for k in [*kinds, *extra]:
            cells = []
            for d in paired:
                m = results["datasets"][d]["models"].get(k)
                for c in ("both", "text", "image"):
                    cells.append(fmt(m["test"].get(c)) if m else "n/a")
            lines.append(f"| {k} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Encoders: `{results['encoder']}`; data: `{results.get('data_dir', '')}`, split "
        f"`{split}`. `commonspace+mdrop`: common-space fusion "
        "trained with modality dropout 0.3. `(paper head)`: the paper's exact joint head (image "
        "projected to the text space, text vector as is, no normalisation); the other joint and "
        "common-space rows project both vectors and LayerNorm them before pooling. "
        "n/a: a unimodal model without its modality.",
    ]
    return "\n".join(lines) + "\n"


def _mods(name: str) -> tuple[str, ...]:
    from emostream.model.training.datasets import MODALITIES

    return MODALITIES[name]
