"""Emotion on posts with both a text and a picture, measured on pairs made from the splits.

No dataset labels emotion on posts that have both: the emotion sets are texts
(reddit-emotions, flickr-fi-text, GoEmotions) or pictures (emotion6), and the two sets with
both (mvsa-single, twitter-ii) carry sentiment only. So the emotion head has never been
trained on a fused text + picture vector, and on such posts the picture takes over. Two
kinds of pairs measure what a user would expect instead:

* ``photo+<dataset>``: each text of an emotion text set beside a picture drawn (seeded)
  from mvsa-single's, tweets' photos with no emotion label of their own. The answer
  should stay the text's: a photo of a car does not make "someone keyed my car" less angry.
* ``matched``: each emotion6 picture beside a GoEmotions comment with the same single
  Ekman label. Both say the same thing, so the answer should be at least as good as
  either alone.

The served model answers such posts with ``FusionConfig.modality_pool``: the weighted mean
of its answers to the text alone and to the picture alone. :func:`fit_text_weight` picks
the text's weight on the val pairs; ``emostream train`` records it and the test pairs'
scores in the card and ``reports/served/pairs.md``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .datasets import Dataset
from .encoder import IMAGE, TEXT
from .evaluation import scores
from .feature_cache import FeatureCache
from .fusion import FusionModel, pool_modalities
from .labels import EMOTIONS

TEXT_SETS = ("reddit-emotions", "flickr-fi-text", "goemotions")
PHOTOS = "mvsa-single"
PICTURES = "emotion6"
NEEDS = (*TEXT_SETS, PHOTOS, PICTURES)
"""The datasets the pairs are made from."""
WEIGHTS = tuple(round(0.5 + 0.05 * i, 2) for i in range(11))
"""Text weights :func:`fit_text_weight` tries: 0.5 (text and picture alike) to 1 (text alone)."""


@dataclass
class Pairs:
    text: torch.Tensor  # (N, text_dim)
    image: torch.Tensor  # (N, image_dim)
    truth: torch.Tensor  # (N,) index into EMOTIONS


def pair_sets(
    cache: FeatureCache, data_dir: Path | None = None, split: str = "val", seed: int = 0
) -> dict[str, Pairs]:
    """``photo+<dataset>`` for each emotion text set, and ``matched``, from ``split``."""
    from .served import TASKS

    rng = random.Random(seed)

    def load(name):
        items = Dataset.load(name, data_dir).split(split)
        return items, cache.features(items, progress=False)

    photo_items, photos = load(PHOTOS)
    photo_rows = [i for i in range(len(photo_items)) if photos.mask[i, IMAGE]]
    out = {}
    for name in TEXT_SETS:
        items, f = load(name)
        task = TASKS[name]
        keep = [
            i for i, it in enumerate(items) if task.truth(it) in task.classes and f.mask[i, TEXT]
        ]
        truth = [EMOTIONS.index(str(task.truth(items[i]))) for i in keep]
        pick = [rng.choice(photo_rows) for _ in keep]
        out[f"photo+{name}"] = Pairs(f.text[keep], photos.image[pick], torch.tensor(truth))
    out["matched"] = _matched(load("goemotions"), load(PICTURES), rng)
    return out


def _matched(comments, pictures, rng: random.Random) -> Pairs:
    """Each picture beside a comment with its label as the comment's only Ekman label."""
    from .served import TASKS

    (c_items, c_feats), (p_items, p_feats) = comments, pictures
    by_label: dict[str, list[int]] = {}
    for i, it in enumerate(c_items):
        labels = it.extra.get("ekman_labels", "").split("|")
        if len(labels) == 1 and labels[0] in EMOTIONS and c_feats.mask[i, TEXT]:
            by_label.setdefault(labels[0], []).append(i)
    rows, texts, truth = [], [], []
    for i, it in enumerate(p_items):
        e = TASKS[PICTURES].truth(it)
        if e in by_label and p_feats.mask[i, IMAGE]:
            rows.append(i)
            texts.append(rng.choice(by_label[e]))
            truth.append(EMOTIONS.index(e))
    return Pairs(c_feats.text[texts], p_feats.image[rows], torch.tensor(truth))


@torch.inference_mode()
def answers(model: FusionModel, pairs: Pairs, head: str = "emotion") -> dict[str, torch.Tensor]:
    """The head's probabilities given the text alone, the picture alone, and both (as the
    model serves them)."""
    model.eval()
    n = len(pairs.truth)
    out = {}
    for name, bits in (("text", (True, False)), ("image", (False, True)), ("both", (True, True))):
        mask = torch.tensor([bits] * n, dtype=torch.bool)
        out[name] = model(pairs.text, pairs.image, mask).logits[head].float().softmax(-1)
    return out


def accuracy(probs: torch.Tensor, truth: torch.Tensor) -> float:
    return float((probs.argmax(-1) == truth).float().mean())


def fit_text_weight(
    model: FusionModel, val: dict[str, Pairs], weights=WEIGHTS
) -> tuple[float, dict]:
    """The text weight whose pooled answers score the best mean accuracy over the val
    pair sets; and every weight's mean (ties: the smaller weight, the picture counts)."""
    got = {k: answers(model, p) for k, p in val.items()}
    table = {
        w: float(
            np.mean(
                [
                    accuracy(pool_modalities(a["text"], a["image"], w), val[k].truth)
                    for k, a in got.items()
                ]
            )
        )
        for w in weights
    }
    best = max(table, key=lambda w: (table[w], -w))
    return best, {str(w): round(v, 4) for w, v in table.items()}


def pair_report(model: FusionModel, sets: dict[str, Pairs]) -> dict:
    """Per pair set: accuracy (bootstrap 95% interval) given the text alone, the picture
    alone and both as served."""
    out = {}
    for name, pairs in sets.items():
        got = answers(model, pairs)
        y = pairs.truth.numpy()
        out[name] = {"n": len(y)} | {
            cond: scores(y, p.argmax(-1).numpy(), EMOTIONS) for cond, p in got.items()
        }
    return out


def pairs_markdown(report: dict, title: str) -> str:
    lines = [
        f"### {title}",
        "",
        "Emotion accuracy over all seven classes (bootstrap 95% interval). `photo+X`: texts of"
        " X beside an unrelated tweet photo, truth = the text's label; `matched`: emotion6"
        " pictures beside a GoEmotions comment of the same label (`model/pairs.py`).",
        "",
        "| pairs | n | text alone | picture alone | both (served) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in report.items():
        cells = [_cell(r[c]) for c in ("text", "image", "both")]
        lines.append(f"| {name} | {r['n']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(r: dict) -> str:
    lo, hi = r["accuracy_ci95"]
    return f"{r['accuracy']:.3f} [{lo:.2f}, {hi:.2f}]"
