"""Fitting the gate of the experts' mixture (``experts.py``) on a trained served model.

Every weight but the gate's is frozen, so the heads stay exactly as trained. Each
dataset weighs the same in the gate's loss: for a live post no dataset is a likelier
guess than another. Modality dropout in this stage teaches the gate that a tweet without
its picture is still a tweet.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch

from emostream.model.experts import Experts
from emostream.model.fusion import FusionModel, build
from emostream.model.training.feature_cache import Features
from emostream.model.training.loop import TrainConfig, TrainingSet, train


def gate_set(parts: list[Features], gate: str) -> TrainingSet:
    """Every row of every dataset with its dataset's index as target; datasets weigh alike."""
    n = [f.mask.shape[0] for f in parts]
    sets = []
    for d, f in enumerate(parts):
        ts = TrainingSet.from_labels(f, [d] * n[d], len(parts), head=gate)
        ts.rank_label[:] = -1  # no ranking loss
        ts.weight = torch.full((n[d],), sum(n) / (len(parts) * n[d]))
        sets.append(ts)
    return TrainingSet.concat(sets)


def fit_gate(
    model: FusionModel,
    spec: Experts,
    parts: list[Features],
    score: Callable[[FusionModel], float],
    cfg: TrainConfig,
    desc: str = "gate",
) -> tuple[FusionModel, list[dict]]:
    """A copy of ``model`` serving through ``spec``, its gate trained on ``parts``
    (dataset ``d``'s features at gate index ``d``) and everything else frozen."""
    gated = build(dataclasses.replace(model.config, experts=spec))
    missing, unexpected = gated.load_state_dict(model.state_dict(), strict=False)
    if unexpected or any(not k.startswith("gate.") for k in missing):
        raise ValueError(f"not the gated model's weights: {unexpected or missing}")
    for name, p in gated.named_parameters():
        p.requires_grad_(name.startswith("gate."))
    gated, history = train(gated, gate_set(parts, spec["gate"]), score, cfg, desc=desc)
    for p in gated.parameters():
        p.requires_grad_(True)
    return gated, history
