"""Losses: soft cross-entropy with target masks, and the common-space ranking loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    rows: torch.Tensor,
    weight: torch.Tensor,
    allowed: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean over ``rows`` of -sum(target * log_softmax(logits)), weighted per row.

    ``target`` is (B, C) distributions; ``rows`` (B,) bool selects the rows with a target
    (and the modality the logits need); ``weight`` (B,) balances datasets. ``allowed``
    (B, C) bool, if given, restricts each row's softmax to the classes its dataset can
    have: a dataset without a neutral class then says nothing about neutral.
    """
    if not rows.any():
        return logits.sum() * 0.0
    z = logits[rows]
    if allowed is not None:
        z = z.masked_fill(~allowed[rows], -1e4)
    logp = F.log_softmax(z, dim=-1)
    per_row = -(target[rows] * logp).sum(-1)
    w = weight[rows]
    return (per_row * w).sum() / w.sum()


def common_space_loss(
    image_vec: torch.Tensor,
    text_vec: torch.Tensor,
    labels: torch.Tensor,
    paired: torch.Tensor,
    margin: float = 0.2,
) -> torch.Tensor:
    """The auxiliary loss of common-space fusion (Duong et al. 2017).

    For each post i with both modalities, its image vector must be closer (cosine) to its
    own text vector than to the text vector of every post j of another class, by
    ``margin``: mean over such (i, j) of ``max(0, margin - s(v_i, t_i) + s(v_i, t_j))``.
    ``labels`` (B,) are class ids (-1 = unknown, never used as a negative);
    ``paired`` (B,) bool marks the posts that have both modalities.
    """
    keep = paired & (labels >= 0)
    if keep.sum() < 2:
        return image_vec.sum() * 0.0
    v = F.normalize(image_vec[keep], dim=-1)
    t = F.normalize(text_vec[keep], dim=-1)
    y = labels[keep]
    sim = v @ t.T
    positive = sim.diagonal().unsqueeze(1)
    negatives = y.unsqueeze(1) != y.unsqueeze(0)
    if not negatives.any():
        return image_vec.sum() * 0.0
    hinge = F.relu(margin - positive + sim)
    return hinge[negatives].mean()


def class_weights(targets: torch.Tensor) -> torch.Tensor:
    """Per class, the inverse square root of its frequency in ``targets`` (N, C), scaled so
    that the mean row weight is 1: between plain accuracy and macro-F1."""
    freq = targets.sum(0).clamp(min=1.0)
    w = freq.rsqrt()
    return w / (w * freq).sum() * freq.sum()
