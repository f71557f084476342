"""Scores with bootstrap intervals, per-class tables and confusion-matrix plots.

``CONDITIONS`` are the modality conditions a model can be evaluated under: ``both`` (each
post as it is), ``text`` (image hidden; posts with text) and ``image`` (text hidden; posts
with an image).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from emostream.model.encoder import IMAGE, TEXT

CONDITIONS = ("both", "text", "image")


def condition_mask(mask: torch.Tensor, condition: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows that qualify, the mask to feed the model) for a modality condition."""
    if condition == "both":
        return mask.any(dim=1), mask
    if condition == "text":
        m = mask.clone()
        m[:, IMAGE] = False
        return mask[:, TEXT], m
    if condition == "image":
        m = mask.clone()
        m[:, TEXT] = False
        return mask[:, IMAGE], m
    raise ValueError(f"condition must be one of {CONDITIONS}")


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    cm: np.ndarray = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> float:
    return float(per_class(confusion(y_true, y_pred, n))["f1"].mean())


def per_class(cm: np.ndarray) -> dict[str, np.ndarray]:
    tp = np.diag(cm).astype(float)
    pred, true = cm.sum(0).astype(float), cm.sum(1).astype(float)
    precision = np.divide(tp, pred, out=np.zeros_like(tp), where=pred > 0)
    recall = np.divide(tp, true, out=np.zeros_like(tp), where=true > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": true}


def scores(
    y_true, y_pred, labels: list[str] | tuple[str, ...], n_boot: int = 1000, seed: int = 0
) -> dict:
    """Accuracy and macro-F1 with bootstrap 95% intervals, per-class scores, confusion."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    n = len(labels)
    cm = confusion(y_true, y_pred, n)
    pc = per_class(cm)
    rng = np.random.default_rng(seed)
    accs, f1s = [], []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y_true), len(y_true))
        accs.append(float((y_true[idx] == y_pred[idx]).mean()))
        f1s.append(macro_f1(y_true[idx], y_pred[idx], n))
    return {
        "n": int(len(y_true)),
        "accuracy": float((y_true == y_pred).mean()),
        "accuracy_ci95": [float(np.percentile(accs, 2.5)), float(np.percentile(accs, 97.5))],
        "macro_f1": float(pc["f1"].mean()),
        "macro_f1_ci95": [float(np.percentile(f1s, 2.5)), float(np.percentile(f1s, 97.5))],
        "per_class": {lab: {k: float(v[i]) for k, v in pc.items()} for i, lab in enumerate(labels)},
        "labels": list(labels),
        "confusion": cm.tolist(),
    }


def plot_confusion(result: dict, path: Path, title: str) -> None:
    """Row-normalised confusion matrix as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.array(result["confusion"], dtype=float)
    labels = result["labels"]
    norm = cm / np.clip(cm.sum(1, keepdims=True), 1, None)
    size = 2.2 + 0.55 * len(labels)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            colour = "white" if norm[i, j] > 0.5 else "black"
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=8, color=colour)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(
        f"{title}\nacc {result['accuracy']:.3f}  macro-F1 {result['macro_f1']:.3f}", fontsize=9
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def fmt(result: dict | None, key: str = "accuracy") -> str:
    """``0.712 [0.66, 0.76]`` for a table cell; ``n/a`` when absent."""
    if result is None:
        return "n/a"
    lo, hi = result[f"{key}_ci95"]
    return f"{result[key]:.3f} [{lo:.2f}, {hi:.2f}]"
