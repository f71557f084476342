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

Sentiment is labelled on posts with both, but only on tweets (mvsa-single, twitter-ii),
whose pictures carry much of it. :func:`sentiment_pair_sets` holds those posts beside the
``photo+<dataset>`` pairs (truth: the sentiment of the text's label). The served sentiment
keeps its fused answer for posts whose text reads like those tweets (the experts' gate
given the text alone, ``FusionConfig.fused_for``) and pools the rest; its text weight is
fitted with the tweets and the made pairs weighing half each.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from emostream.model.encoder import IMAGE, TEXT
from emostream.model.fusion import FusionModel, pool_modalities
from emostream.model.training.datasets import Dataset
from emostream.model.training.evaluation import scores
from emostream.model.training.feature_cache import FeatureCache
from emostream.model.training.labels import EMOTIONS, SENTIMENTS, goemotions_emotions
from emostream.model.training.targets import sentiment_target
from emostream.model.training.tasks import TASKS

TEXT_SETS = ("reddit-emotions", "flickr-fi-text", "goemotions")
PHOTOS = "mvsa-single"
PICTURES = "emotion6"
NEEDS = (*TEXT_SETS, PHOTOS, PICTURES)
"""The datasets the pairs are made from."""
TWEETS = ("mvsa-single", "twitter-ii")
"""The sets whose sentiment is labelled on text and picture together."""
SENTIMENT_NEEDS = (*TEXT_SETS, *TWEETS)
"""The datasets the sentiment pairs are made from."""
WEIGHTS = tuple(round(0.5 + 0.05 * i, 2) for i in range(11))
"""Text weights :func:`fit_text_weight` tries: 0.5 (text and picture alike) to 1 (text alone)."""


@dataclass
class Pairs:
    text: torch.Tensor  # (N, text_dim)
    image: torch.Tensor  # (N, image_dim)
    truth: torch.Tensor  # (N,) index into the head's classes (EMOTIONS, SENTIMENTS)
    classes: tuple[int, ...] | None = None
    """The classes the truth can take (twitter-ii: no neutral); None: every class."""

    def predicted(self, probs: torch.Tensor) -> torch.Tensor:
        """The most probable class among ``classes``."""
        if self.classes is None:
            return probs.argmax(-1)
        cols = torch.tensor(self.classes)
        return cols[probs[:, cols].argmax(-1)]


def _loader(cache: FeatureCache, data_dir: Path | None, split: str):
    def load(name: str):
        items = Dataset.load(name, data_dir).split(split)
        return items, cache.features(items, progress=False)

    return load


def _photo_pairs(load, rng: random.Random, truth_of) -> dict[str, Pairs]:
    """``photo+<dataset>`` for each text set: every text with a truth (``truth_of(item)``,
    a class index or None) beside a tweet photo drawn from ``rng``."""
    photo_items, photos = load(PHOTOS)
    photo_rows = [i for i in range(len(photo_items)) if photos.mask[i, IMAGE]]
    out = {}
    for name in TEXT_SETS:
        items, f = load(name)
        truths = [truth_of(it) for it in items]
        keep = [i for i, t in enumerate(truths) if t is not None and f.mask[i, TEXT]]
        pick = [rng.choice(photo_rows) for _ in keep]
        truth = torch.tensor([truths[i] for i in keep], dtype=torch.long)
        out[f"photo+{name}"] = Pairs(f.text[keep], photos.image[pick], truth)
    return out


def pair_sets(
    cache: FeatureCache, data_dir: Path | None = None, split: str = "val", seed: int = 0
) -> dict[str, Pairs]:
    """``photo+<dataset>`` for each emotion text set, and ``matched``, from ``split``."""

    def emotion(item) -> int | None:
        task = TASKS[item.dataset]
        truth = task.truth(item)
        return EMOTIONS.index(truth) if truth in task.classes else None

    rng = random.Random(seed)
    load = _loader(cache, data_dir, split)
    out = _photo_pairs(load, rng, emotion)
    out["matched"] = _matched(load("goemotions"), load(PICTURES), rng)
    return out


def _matched(comments, pictures, rng: random.Random) -> Pairs:
    """Each picture beside a comment with its label as the comment's only served emotion."""
    (c_items, c_feats), (p_items, p_feats) = comments, pictures
    by_label: dict[str, list[int]] = {}
    for i, it in enumerate(c_items):
        labels = goemotions_emotions(it.extra.get("labels", "").split("|"))
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


def sentiment_pair_sets(
    cache: FeatureCache, data_dir: Path | None = None, split: str = "val", seed: int = 0
) -> dict[str, Pairs]:
    """``photo+<dataset>`` with the sentiment of each text's label (GoEmotions comments
    with labels of both valences left out), and the tweets of ``TWEETS`` with their own
    pictures."""

    def sentiment(item) -> int | None:
        target = sentiment_target(item)
        return None if target is None else int(np.argmax(target))

    load = _loader(cache, data_dir, split)
    out = _photo_pairs(load, random.Random(seed), sentiment)
    for name in TWEETS:
        items, f = load(name)
        keep = [i for i in range(len(items)) if f.mask[i].all()]
        truth = torch.tensor([SENTIMENTS.index(items[i].label) for i in keep])
        space = tuple(sorted({SENTIMENTS.index(it.label) for it in items}))
        out[name] = Pairs(f.text[keep], f.image[keep], truth, space)
    return out


CONDITIONS = {"text": (True, False), "image": (False, True), "both": (True, True)}


@torch.inference_mode()
def answers(
    model: FusionModel, pairs: Pairs, head: str = "emotion", conditions=tuple(CONDITIONS)
) -> dict[str, torch.Tensor]:
    """The head's probabilities given the text alone, the picture alone, and both (as the
    model serves them); or only the ``conditions`` asked for."""
    model.eval()
    n = len(pairs.truth)
    out = {}
    for name in conditions:
        mask = torch.tensor([CONDITIONS[name]] * n, dtype=torch.bool)
        out[name] = model(pairs.text, pairs.image, mask).logits[head].float().softmax(-1)
    return out


def accuracy(probs: torch.Tensor, pairs: Pairs) -> float:
    return float((pairs.predicted(probs) == pairs.truth).float().mean())


def fit_text_weight(score, weights=WEIGHTS) -> tuple[float, dict]:
    """The text weight ``w`` with the best val ``score(w)`` (:func:`pooled_score`,
    :func:`tweets_and_pairs_score`), and every weight's score (ties: the smaller weight, the
    picture counts)."""
    table = {w: score(w) for w in weights}
    best = max(table, key=lambda w: (table[w], -w))
    return best, {str(w): round(v, 4) for w, v in table.items()}


def pooled_score(model: FusionModel, val: dict[str, Pairs], head: str = "emotion"):
    """``score(w)``: the mean accuracy over the val pair sets of the model's text-alone and
    picture-alone answers pooled with text weight ``w``."""
    got = {k: answers(model, p, head) for k, p in val.items()}

    def score(w: float) -> float:
        pooled = [pool_modalities(a["text"], a["image"], w) for a in got.values()]
        return float(np.mean([accuracy(p, val[k]) for p, k in zip(pooled, got, strict=True)]))

    return score


def tweets_and_pairs_score(model: FusionModel, val: dict[str, Pairs], head: str = "sentiment"):
    """``score(w)``: the accuracy of ``head`` as served by ``model`` with text weight ``w``
    (its ``fused_for`` included); the mean over the tweets of ``TWEETS`` and the mean over
    the made pairs weigh half each.

    The served answer is linear in ``w`` (``g p_fused + (1 - g) (w p_text + (1 - w)
    p_picture)``), so it is computed once at ``w = 0`` and once at ``w = 1`` and mixed."""
    from emostream.model.fusion import reconfigured

    ends = []
    for w in (0.0, 1.0):
        served = reconfigured(model, modality_pool=model.config.modality_pool | {head: w})
        ends.append({k: answers(served, p, head, ("both",))["both"] for k, p in val.items()})

    def score(w: float) -> float:
        acc = {k: accuracy((1.0 - w) * ends[0][k] + w * ends[1][k], p) for k, p in val.items()}
        tweets = [a for k, a in acc.items() if k in TWEETS]
        made = [a for k, a in acc.items() if k not in TWEETS]
        return float(np.mean([np.mean(tweets), np.mean(made)]))

    return score


def pair_report(model: FusionModel, sets: dict[str, Pairs], head: str = "emotion") -> dict:
    """Per pair set: accuracy of ``head`` (bootstrap 95% interval) given the text alone, the
    picture alone and both as served."""
    names = EMOTIONS if head == "emotion" else SENTIMENTS
    out = {}
    for name, pairs in sets.items():
        got = answers(model, pairs, head)
        y = pairs.truth.numpy()
        out[name] = {"n": len(y)} | {
            cond: scores(y, pairs.predicted(p).numpy(), names) for cond, p in got.items()
        }
    return out


NOTES = {
    "emotion": "Emotion accuracy over all seven classes (bootstrap 95% interval). `photo+X`:"
    " texts of X beside an unrelated tweet photo, truth = the text's label; `matched`: emotion6"
    " pictures beside a GoEmotions comment of the same label (`model/pairs.py`).",
    "sentiment": "Sentiment accuracy (bootstrap 95% interval). `photo+X`: texts of X beside an"
    " unrelated tweet photo, truth = the sentiment of the text's label; mvsa-single and"
    " twitter-ii: their own posts, text and picture (`model/pairs.py`).",
}


def pairs_markdown(report: dict, title: str, head: str = "emotion") -> str:
    lines = [
        f"### {title}",
        "",
        NOTES[head],
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
