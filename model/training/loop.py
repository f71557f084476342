"""Training of the fusion heads on cached features (the encoders stay frozen).

``TrainingSet`` is features plus, per output head, soft targets and a row mask of which
items have a target for that head. ``train`` runs AdamW with optional modality dropout,
adds the ranking loss for common-space fusion, scores every epoch with a caller's
``score(model) -> float`` on validation data and keeps the best epoch's weights.
Seeds are fixed, so a run is reproducible on the same machine.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from emostream.model.encoder import IMAGE, TEXT
from emostream.model.fusion import FusionModel
from emostream.model.training.feature_cache import Features
from emostream.model.training.losses import common_space_loss, soft_cross_entropy


@dataclass
class TrainingSet:
    features: Features
    targets: dict[str, torch.Tensor]  # head -> (N, C) distributions (zeros where unknown)
    has_target: dict[str, torch.Tensor]  # head -> (N,) bool
    rank_label: torch.Tensor  # (N,) class id for the ranking loss, -1 = none
    weight: torch.Tensor = field(default=None)  # (N,) per-row loss weight
    allowed: dict[str, torch.Tensor] = field(default_factory=dict)
    """head -> (N, C) bool: the classes a row's dataset can have (a head absent: all)."""

    def __post_init__(self) -> None:
        if self.weight is None:
            self.weight = torch.ones(len(self))

    def allowed_for(self, head: str) -> torch.Tensor:
        got = self.allowed.get(head)
        return got if got is not None else torch.ones_like(self.targets[head], dtype=torch.bool)

    def __len__(self) -> int:
        return self.features.mask.shape[0]

    @classmethod
    def from_labels(cls, features: Features, labels: list[int], n_classes: int, head="label"):
        y = torch.tensor(labels)
        return cls(
            features,
            {head: torch.nn.functional.one_hot(y, n_classes).float()},
            {head: torch.ones(len(y), dtype=torch.bool)},
            y.clone(),
        )

    @classmethod
    def concat(cls, parts: list[TrainingSet]) -> TrainingSet:
        heads = sorted({h for p in parts for h in p.targets})
        f = Features(
            [k for p in parts for k in p.features.keys],
            torch.cat([p.features.text for p in parts]),
            torch.cat([p.features.image for p in parts]),
            torch.cat([p.features.mask for p in parts]),
        )
        return cls(
            f,
            {h: torch.cat([p.targets[h] for p in parts]) for h in heads},
            {h: torch.cat([p.has_target[h] for p in parts]) for h in heads},
            torch.cat([p.rank_label for p in parts]),
            torch.cat([p.weight for p in parts]),
            {
                h: torch.cat([p.allowed_for(h) for p in parts])
                for h in heads
                if any(h in p.allowed for p in parts)  # a head no part restricts stays open
            },
        )


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 40
    batch_size: int = 128
    """Rows per step; raised to len(data) // 100 on large sets so an epoch is ~100 steps."""
    lr: float = 1e-3
    weight_decay: float = 1e-2
    patience: int = 8
    modality_dropout: float = 0.0
    """Probability that a post with both modalities loses one (either, equally) in a step."""
    aux_weight: float = 0.5
    """Weight of the common-space ranking loss against cross-entropy."""
    margin: float = 0.2
    seed: int = 20261124


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def drop_modalities(mask: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Copy of ``mask`` where each post with both modalities loses one with probability p."""
    if p <= 0:
        return mask
    both = mask.all(dim=1)
    u = torch.rand(mask.shape[0], generator=gen)
    drop = both & (u < p)
    which = torch.rand(mask.shape[0], generator=gen) < 0.5
    out = mask.clone()
    out[drop & which, TEXT] = False
    out[drop & ~which, IMAGE] = False
    return out


def step_loss(model: FusionModel, batch: TrainingSet, cfg: TrainConfig, mask: torch.Tensor):
    f = batch.features
    out = model(f.text, f.image, mask)
    loss = f.text.new_zeros(())
    for logits, rows in out.train_terms:
        for head, target in batch.targets.items():
            keep = rows & batch.has_target[head]
            allowed = batch.allowed.get(head)
            loss = loss + soft_cross_entropy(logits[head], target, keep, batch.weight, allowed)
    if model.config.kind == "commonspace" and cfg.aux_weight > 0:
        t, v = model.embed(f.text, f.image, f.mask)
        aux = common_space_loss(v, t, batch.rank_label, f.mask.all(dim=1), cfg.margin)
        loss = loss + cfg.aux_weight * aux
    return loss


def _subset(ts: TrainingSet, rows: torch.Tensor) -> TrainingSet:
    f = ts.features
    return TrainingSet(
        Features([], f.text[rows], f.image[rows], f.mask[rows]),  # keys are not needed here
        {h: t[rows] for h, t in ts.targets.items()},
        {h: t[rows] for h, t in ts.has_target.items()},
        ts.rank_label[rows],
        ts.weight[rows],
        {h: a[rows] for h, a in ts.allowed.items()},
    )


def train(
    model: FusionModel,
    data: TrainingSet,
    score: Callable[[FusionModel], float],
    cfg: TrainConfig = TrainConfig(),
    progress: bool = True,
    desc: str = "training",
) -> tuple[FusionModel, list[dict]]:
    """Train ``model`` in place; return it with the best-scoring epoch's weights and history."""
    seed_everything(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    best, best_state, history, stale = -float("inf"), None, [], 0
    bar = tqdm(range(cfg.epochs), desc=desc, unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        order = torch.randperm(len(data), generator=gen)
        total = 0.0
        step = max(cfg.batch_size, len(data) // 100)
        for start in range(0, len(data), step):
            batch = _subset(data, order[start : start + step])
            mask = drop_modalities(batch.features.mask, cfg.modality_dropout, gen)
            loss = step_loss(model, batch, cfg, mask)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(batch)
        model.eval()
        s = score(model)
        history.append({"epoch": epoch, "loss": total / len(data), "val": s})
        bar.set_postfix(loss=f"{total / len(data):.3f}", val=f"{s:.3f}")
        if s > best:
            best, best_state, stale = s, copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    return model, history


@torch.inference_mode()
def predict(model: FusionModel, features: Features, mask: torch.Tensor | None = None):
    """Probabilities per head, (N, C), in eval mode."""
    model.eval()
    out = model(features.text, features.image, features.mask if mask is None else mask)
    return {h: logits.softmax(-1) for h, logits in out.logits.items()}
