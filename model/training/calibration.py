"""Calibrated scores: temperature scaling per head, expected calibration error, diagrams.

A softmax over a trained head is usually over-confident. Temperature scaling divides the
logits by one number T per head, fitted on validation data to minimise the negative log
likelihood (Guo et al., 2017); the argmax, and so every accuracy, is unchanged. The
expected calibration error (ECE) is the mean gap between confidence and accuracy over
``BINS`` equal-width confidence bins, weighted by the bins' counts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

BINS = 15


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The T > 0 that minimises NLL of softmax(logits / T) on (logits, labels)."""
    log_t = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200)
    logits = logits.detach().float().clone()  # a normal tensor, even from inference mode

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.exp())


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> dict:
    """Per-bin confidence, accuracy and count, and the ECE."""
    conf = probs.max(1)
    correct = (probs.argmax(1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    acc = np.bincount(which, weights=correct, minlength=bins) / np.maximum(count, 1)
    mean_conf = np.bincount(which, weights=conf, minlength=bins) / np.maximum(count, 1)
    ece = float((np.abs(acc - mean_conf) * count).sum() / max(count.sum(), 1))
    return {"ece": ece, "confidence": mean_conf, "accuracy": acc, "count": count}


def plot_reliability(before: dict, after: dict, path: Path, title: str) -> None:
    """Accuracy against confidence per bin, before and after scaling, with the diagonal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.8, 4.4), dpi=110)
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfect")
    for r, name, style in ((before, "softmax", "o-"), (after, "temperature-scaled", "s-")):
        keep = r["count"] > 0
        ax.plot(
            r["confidence"][keep],
            r["accuracy"][keep],
            style,
            ms=4,
            label=f"{name} (ECE {r['ece']:.3f})",
        )
    ax.set(xlabel="confidence (top probability)", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1))
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
