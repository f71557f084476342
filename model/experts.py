"""Served heads as a mixture of the per-dataset heads, gated by which dataset a post is like.

One served emotion head trained on reddit-emotions, flickr-fi-text, GoEmotions and emotion6
at once has to follow four labelling conventions with one set of weights, and it falls
behind each dataset's own head on that dataset (reddit-emotions: 0.79 against 0.85). The
per-dataset heads are trained anyway (``served.py``); this module lets the served output
use them:

* a gate (``Gate``, a small network on the encoders' vectors) gives ``g_d``: how much a
  post looks like a post of dataset ``d``;
* expert ``d`` (dataset ``d``'s own head) re-decides only among the served classes its
  labels map to (``S_d``). It keeps the mass the served head puts on ``S_d`` and spreads
  it by its own distribution, or by a log-linear pool of its distribution and the served
  head's (``weights``); classes outside ``S_d`` keep the served head's probability.
  So reddit-emotions' head (anger, disgust, fear, joy) never takes away neutral or sadness;
  it decides which of its four classes a post belongs to, given one of them;
* the served distribution is ``sum_d g_d * expert_d + (1 - sum_d g_d) * served``, where
  datasets without an expert for the head (twitter-ii for emotion) leave the served head.

The mixing has no weights of its own: ``FusionConfig.experts`` holds which head is an
expert for which served head, its gate index and the served class of each of its labels.
Training losses use the raw head logits; only the model's returned ``logits`` are mixed
(as log-probabilities), so calibration and every runtime see the mixture.

The gate is fitted after the rest, every other weight frozen (``gate.py``).
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from .encoder import IMAGE, TEXT

Experts = dict
"""``{"gate": name, "domains": [...], "heads": {served: [{"head", "gate", "classes"}]}}``."""


class Gate(nn.Module):
    """Which training dataset a post is like, from the encoders' vectors themselves (the
    classifier's hidden layer is trained for emotion and tells the datasets apart poorly)."""

    def __init__(self, text_dim: int, image_dim: int, domains: int, hidden: int = 128) -> None:
        super().__init__()
        self.norm_text = nn.LayerNorm(text_dim)
        self.norm_image = nn.LayerNorm(image_dim)
        self.net = nn.Sequential(
            nn.Linear(text_dim + image_dim + 2, hidden), nn.GELU(), nn.Linear(hidden, domains)
        )

    def forward(self, text, image, mask) -> torch.Tensor:
        mt = mask[:, TEXT : TEXT + 1].to(text.dtype)
        mi = mask[:, IMAGE : IMAGE + 1].to(image.dtype)
        t, v = self.norm_text(text) * mt, self.norm_image(image) * mi
        return self.net(torch.cat([t, v, mt, mi], dim=1))


def expert_spec(
    gate: str,
    domains: list[str],
    heads: dict[str, list[tuple[str, int, list[int]]]],
    weights: dict[str, float] | None = None,
) -> Experts:
    """The JSON-able description: the gate's name and classes (``domains``); per served
    head, (expert head, gate index, served class of each of the expert's labels); and per
    served head the experts' weight against the served head (1: the expert alone decides)."""
    return {
        "gate": gate,
        "domains": list(domains),
        "heads": {
            served: [{"head": h, "gate": g, "classes": list(c)} for h, g, c in experts]
            for served, experts in heads.items()
        },
        "weights": {served: float((weights or {}).get(served, 1.0)) for served in heads},
    }


@functools.lru_cache(maxsize=64)
def _class_map(
    classes: tuple[int, ...], n: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """The expert's served class per label, and which of the ``n`` served classes it covers:
    made once per expert and device, not on every batch (as plain tensors, even when first
    asked for under inference mode, so training can use them too)."""
    with torch.inference_mode(False):
        idx = torch.tensor(classes, device=device)
        space = torch.zeros(n, dtype=torch.bool, device=device)
        space[idx] = True
    return idx, space


def _expert_view(
    p: torch.Tensor, own: torch.Tensor, classes: list[int], weight: float = 1.0
) -> torch.Tensor:
    """Served distribution ``p`` with the mass on the expert's classes spread by ``own``
    (``weight`` < 1: by the log-linear pool ``p ** (1 - weight) * own ** weight``)."""
    idx, space = _class_map(tuple(classes), p.shape[1], p.device)
    spread = torch.zeros_like(p).index_add(1, idx, own.to(p.dtype))
    mass = (p * space).sum(-1, keepdim=True)
    if weight < 1.0:
        tiny = torch.finfo(p.dtype).tiny
        pooled = (p.clamp(min=tiny) ** (1.0 - weight) * spread.clamp(min=tiny) ** weight) * space
        spread = pooled / pooled.sum(-1, keepdim=True)
    return torch.where(space, mass * spread, p)


def mix(logits: dict[str, torch.Tensor], experts: Experts) -> dict[str, torch.Tensor]:
    """``logits`` with each served head replaced by the log of its gated mixture."""
    if not experts:
        return logits
    gate = logits[experts["gate"]].float().softmax(-1)
    out = dict(logits)
    for served, group in experts["heads"].items():
        p = logits[served].float().softmax(-1)
        mixed = torch.zeros_like(p)
        covered = torch.zeros_like(p[:, :1])
        weight = experts.get("weights", {}).get(served, 1.0)
        for e in group:
            g = gate[:, e["gate"] : e["gate"] + 1]
            own = logits[e["head"]].float().softmax(-1)
            mixed = mixed + g * _expert_view(p, own, e["classes"], weight)
            covered = covered + g
        mixed = mixed + (1.0 - covered).clamp(min=0.0) * p
        tiny = torch.finfo(mixed.dtype).tiny
        out[served] = mixed.clamp(min=tiny).log().to(logits[served].dtype)
    return out
