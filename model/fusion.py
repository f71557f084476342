"""The paper's six classifiers over frozen features, all mask-aware.

Duong, Lebret & Aberer (2017) compare unimodal baselines with four ways to fuse an image
vector and a text vector. Here every model takes ``(text, image, mask)`` where ``mask`` is
``(B, 2)`` bool (``[has_text, has_image]``) and never reads a feature whose mask bit is off:
a missing modality is handled by design, not by guessing a zero vector means "absent".

=================  ===============================================================
``text``           classifier on the text vector
``image``          classifier on the image vector
``early``          classifier on [text, image, mask] concatenated
``late``           mean of the unimodal classifiers' probabilities over present modalities
``joint``          image projected to the text dimension, max/mean pooled with the text
                   vector over the present modalities, then the classifier
``commonspace``    ``joint`` trained with the auxiliary ranking loss (``losses.py``)
=================  ===============================================================

A unimodal model given a post without its modality sees no evidence and answers with
its learned bias (the class prior); evaluation marks such cells as not applicable.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import torch
from torch import nn

from .encoder import IMAGE, TEXT
from .experts import Gate, mix

KINDS = ("text", "image", "early", "late", "joint", "commonspace")


@dataclass(frozen=True)
class FusionConfig:
    kind: str
    text_dim: int = 384
    image_dim: int = 1280
    heads: dict[str, int] = field(default_factory=lambda: {"label": 2})
    hidden: int = 256
    dropout: float = 0.3
    pool: str = "max"  # joint / commonspace: "max" or "mean"
    project_text: bool = True
    """joint / commonspace: also learn a projection of the text vector (the paper keeps it)."""
    normalise: bool = True
    """joint / commonspace: LayerNorm each projected vector before pooling (the paper does not).
    Without it the image projection outgrows the unit-norm text vectors and max pooling
    ignores the text; see the ablation rows of the paper table."""
    experts: dict = field(default_factory=dict)
    """joint / commonspace: served heads mixed from per-dataset heads (``experts.py``)."""
    modality_pool: dict[str, float] = field(default_factory=dict)
    """joint / commonspace: heads whose answer for a post with both modalities pools the
    answers for its text alone and its picture alone, ``{head: text weight w}``:
    ``p = w p_text + (1 - w) p_image`` (the paper's late fusion, weighted). For a head that no
    dataset labels on posts with both modalities (emotion), whose fused input is never
    trained (``docs/model.md``, "Emotion with text and picture")."""
    fused_for: dict[str, list[str]] = field(default_factory=dict)
    """joint / commonspace, with ``experts``: heads of ``modality_pool`` that keep their fused
    answer for posts whose text reads like a post of these training datasets, ``{head:
    [dataset, ...]}``. The fused answer's weight is the gate's weight on those datasets given
    the text alone (for sentiment: the tweet sets labelled on text and picture together);
    the pooled answer takes the rest."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown model kind {self.kind!r}; known: {KINDS}")
        if self.pool not in ("max", "mean"):
            raise ValueError(f"pool must be 'max' or 'mean', not {self.pool!r}")
        for head, w in self.modality_pool.items():
            if head not in self.heads or not 0.0 <= w <= 1.0:
                raise ValueError(
                    f"modality_pool: need a head of {list(self.heads)} and a "
                    f"text weight in [0, 1], got {head!r}: {w!r}"
                )
        domains = self.experts.get("domains", []) if self.experts else []
        for head, names in self.fused_for.items():
            unknown = [n for n in names if n not in domains]
            if head not in self.modality_pool or unknown:
                raise ValueError(
                    f"fused_for: need a head of modality_pool {list(self.modality_pool)} and "
                    f"datasets of the experts' gate {domains}, got {head!r}: {names!r}"
                )

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class FusionOutput:
    logits: dict[str, torch.Tensor]
    """Per head, (B, C): softmax gives the prediction (log-probabilities for ``late``)."""
    train_terms: list[tuple[dict[str, torch.Tensor], torch.Tensor]]
    """(logits per head, rows they apply to) pairs that cross-entropy is taken over."""
    text_vec: torch.Tensor | None = None
    image_vec: torch.Tensor | None = None
    """Common-space vectors (same dimension) for the ranking loss."""


class Classifier(nn.Module):
    """Dropout -> Linear -> GELU -> Dropout -> one Linear per head."""

    def __init__(self, in_dim: int, hidden: int, heads: dict[str, int], dropout: float):
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout)
        )
        self.heads = nn.ModuleDict({name: nn.Linear(hidden, n) for name, n in heads.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.trunk(x)
        return {name: head(h) for name, head in self.heads.items()}


class FusionModel(nn.Module):
    """Base: holds the config; subclasses implement ``forward(text, image, mask)``."""

    def __init__(self, config: FusionConfig) -> None:
        super().__init__()
        self.config = config

    @staticmethod
    def _masked(text, image, mask):
        mt = mask[:, TEXT : TEXT + 1].to(text.dtype)
        mi = mask[:, IMAGE : IMAGE + 1].to(image.dtype)
        return text * mt, image * mi, mt, mi

    def forward(self, text, image, mask) -> FusionOutput:  # pragma: no cover - abstract
        raise NotImplementedError


class Unimodal(FusionModel):
    def __init__(self, config: FusionConfig) -> None:
        super().__init__(config)
        self.modality = TEXT if config.kind == "text" else IMAGE
        dim = config.text_dim if self.modality == TEXT else config.image_dim
        self.classifier = Classifier(dim, config.hidden, config.heads, config.dropout)

    def forward(self, text, image, mask) -> FusionOutput:
        t, v, _, _ = self._masked(text, image, mask)
        logits = self.classifier(t if self.modality == TEXT else v)
        return FusionOutput(logits, [(logits, mask[:, self.modality])])


class EarlyFusion(FusionModel):
    def __init__(self, config: FusionConfig) -> None:
        super().__init__(config)
        dim = config.text_dim + config.image_dim + 2
        self.classifier = Classifier(dim, config.hidden, config.heads, config.dropout)

    def forward(self, text, image, mask) -> FusionOutput:
        t, v, mt, mi = self._masked(text, image, mask)
        logits = self.classifier(torch.cat([t, v, mt, mi], dim=1))
        return FusionOutput(logits, [(logits, mask.any(dim=1))])


class LateFusion(FusionModel):
    def __init__(self, config: FusionConfig) -> None:
        super().__init__(config)
        c = config
        self.text_classifier = Classifier(c.text_dim, c.hidden, c.heads, c.dropout)
        self.image_classifier = Classifier(c.image_dim, c.hidden, c.heads, c.dropout)

    def forward(self, text, image, mask) -> FusionOutput:
        t, v, mt, mi = self._masked(text, image, mask)
        lt, li = self.text_classifier(t), self.image_classifier(v)
        present = (mt + mi).clamp(min=1.0)
        fused = {}
        for name in lt:
            p = (lt[name].softmax(-1) * mt + li[name].softmax(-1) * mi) / present
            fused[name] = p.clamp(min=1e-8).log()
        return FusionOutput(fused, [(lt, mask[:, TEXT]), (li, mask[:, IMAGE])])


class JointFusion(FusionModel):
    """Image vector projected to the text dimension, pooled with the text vector."""

    def __init__(self, config: FusionConfig) -> None:
        super().__init__(config)
        c = config
        self.image_projection = nn.Linear(c.image_dim, c.text_dim)
        self.text_projection = nn.Linear(c.text_dim, c.text_dim) if c.project_text else None
        self.norm_text = nn.LayerNorm(c.text_dim) if c.normalise else None
        self.norm_image = nn.LayerNorm(c.text_dim) if c.normalise else None
        self.classifier = Classifier(c.text_dim, c.hidden, c.heads, c.dropout)
        self.gate = Gate(c.text_dim, c.image_dim, len(c.experts["domains"])) if c.experts else None

    def embed(self, text, image, mask) -> tuple[torch.Tensor, torch.Tensor]:
        """Both modalities in the common (text) space; rows of an absent modality are zero."""
        t, v, mt, mi = self._masked(text, image, mask)
        v = self.image_projection(v)
        if self.text_projection is not None:
            t = self.text_projection(t)
        if self.norm_text is not None and self.norm_image is not None:
            t, v = self.norm_text(t), self.norm_image(v)
        return t * mt, v * mi

    def forward(self, text, image, mask) -> FusionOutput:
        t, v = self.embed(text, image, mask)
        logits = self._heads(t, v, text, image, mask)
        served = mix(logits, self.config.experts)
        if self.config.modality_pool:
            served = self._pool_modalities(served, t, v, text, image, mask)
        return FusionOutput(served, [(logits, mask.any(dim=1))], text_vec=t, image_vec=v)

    def _heads(self, t, v, text, image, mask) -> dict[str, torch.Tensor]:
        """Raw head logits (the gate's too) from the common-space vectors ``t``, ``v``."""
        mt = mask[:, TEXT : TEXT + 1]
        mi = mask[:, IMAGE : IMAGE + 1]
        if self.config.pool == "max":
            neg = torch.finfo(t.dtype).min
            fused = torch.maximum(t.masked_fill(~mt, neg), v.masked_fill(~mi, neg))
            fused = fused.masked_fill(~(mt | mi), 0.0)
        else:
            fused = (t + v) / (mt.to(t.dtype) + mi.to(t.dtype)).clamp(min=1.0)
        logits = self.classifier(fused)
        if self.gate is not None:
            logits = logits | {self.config.experts["gate"]: self.gate(text, image, mask)}
        return logits

    def _pool_modalities(self, served, t, v, text, image, mask):
        """``config.modality_pool``: for rows with both modalities, each listed head is the
        weighted mean of its served probabilities for the text alone and the picture alone
        (the heads run again on those rows only; the embedded vectors are reused), and for
        heads of ``config.fused_for`` that mean mixed with the fused answer by the gate."""
        both = mask.all(dim=1)
        if not bool(both.any()):
            return served
        t, v, text, image = t[both], v[both], text[both], image[both]
        alone = {}
        for keep, vecs in ((TEXT, (t, torch.zeros_like(v))), (IMAGE, (torch.zeros_like(t), v))):
            m = torch.zeros(len(t), 2, dtype=torch.bool, device=mask.device)
            m[:, keep] = True
            alone[keep] = mix(self._heads(*vecs, text, image, m), self.config.experts)
        out = dict(served)
        for head, w in self.config.modality_pool.items():
            pt = alone[TEXT][head].float().softmax(-1)
            pi = alone[IMAGE][head].float().softmax(-1)
            pooled = pool_modalities(pt, pi, w)
            if head in self.config.fused_for:
                g = self._gate_weight(alone[TEXT], self.config.fused_for[head])
                fused = served[head][both].float().softmax(-1)
                pooled = (g * fused + (1.0 - g) * pooled).clamp(min=torch.finfo(g.dtype).tiny)
            out[head] = served[head].clone()
            out[head][both] = pooled.log().to(served[head].dtype)
        return out

    def _gate_weight(self, logits: dict[str, torch.Tensor], datasets: list[str]) -> torch.Tensor:
        """(B, 1): the gate's total weight on ``datasets``."""
        experts = self.config.experts
        cols = [experts["domains"].index(d) for d in datasets]
        return logits[experts["gate"]].float().softmax(-1)[:, cols].sum(-1, keepdim=True)


def pool_modalities(p_text: torch.Tensor, p_image: torch.Tensor, w: float) -> torch.Tensor:
    """``w p_text + (1 - w) p_image``, never exactly 0 (its log is taken)."""
    return (w * p_text + (1.0 - w) * p_image).clamp(min=torch.finfo(p_text.dtype).tiny)


class CommonSpaceFusion(JointFusion):
    """Joint fusion whose training adds the ranking loss on its (text_vec, image_vec)."""


_CLASSES = {
    "text": Unimodal,
    "image": Unimodal,
    "early": EarlyFusion,
    "late": LateFusion,
    "joint": JointFusion,
    "commonspace": CommonSpaceFusion,
}


def build(config: FusionConfig) -> FusionModel:
    return _CLASSES[config.kind](config)


def reconfigured(model: FusionModel, **changes) -> FusionModel:
    """A copy of ``model`` with ``changes`` to its config and the same weights, in eval mode
    (for settings that add no weights: experts' offsets, the modality pool)."""
    out = build(replace(model.config, **changes))
    out.load_state_dict(model.state_dict())
    return out.eval()
