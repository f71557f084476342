"""Training targets of the served model: an emotion and a sentiment distribution per item.

Each dataset supervises the heads it has labels for (see ``labels.py``); a head without
a target for an item gets ``None`` and is masked out of the loss. Where a dataset carries
richer annotation than its single ``label`` it is used:

* goemotions: all of the comment's Ekman labels (``ekman_labels``), uniformly;
* emotion6: the user-study distribution (``prob_*``, neutral dropped) and the valence score
  (1-9; below 4.5 negative, above 5.5 positive, otherwise neutral).
"""

from __future__ import annotations

import numpy as np

from .datasets import Item
from .labels import EMOTIONS, SENTIMENTS, emotion_of, sentiment_of


def _one_hot(names: tuple[str, ...], chosen: list[str]) -> np.ndarray | None:
    if not chosen:
        return None
    v: np.ndarray = np.zeros(len(names), dtype=np.float32)
    for c in chosen:
        v[names.index(c)] += 1.0
    return v / v.sum()


def emotion_target(item: Item) -> np.ndarray | None:
    """Distribution over ``EMOTIONS`` or None."""
    if item.dataset == "goemotions":
        labels = [e for e in item.extra.get("ekman_labels", "").split("|") if e in EMOTIONS]
        return _one_hot(EMOTIONS, labels)
    if item.dataset == "emotion6":
        p = np.array([float(item.extra[f"prob_{e}"] or 0) for e in EMOTIONS], dtype=np.float32)
        if p.sum() > 0:
            return p / p.sum()
    e = emotion_of(item.dataset, item.label)
    return _one_hot(EMOTIONS, [e] if e else [])


def sentiment_target(item: Item) -> np.ndarray | None:
    """Distribution over ``SENTIMENTS`` or None."""
    if item.dataset == "emotion6":
        valence = float(item.extra["valence"])
        s = "negative" if valence < 4.5 else "positive" if valence > 5.5 else "neutral"
        return _one_hot(SENTIMENTS, [s])
    if item.dataset == "goemotions":
        labels = [sentiment_of(item.dataset, e) for e in item.extra["ekman_labels"].split("|")]
        known = [s for s in labels if s]
        # A comment that is both joyful and angry has no single valence: leave it out.
        return _one_hot(SENTIMENTS, known[:1]) if len(set(known)) == 1 else None
    own = sentiment_of(item.dataset, item.label)
    return _one_hot(SENTIMENTS, [own] if own else [])


def dataset_target(item: Item, labels: tuple[str, ...]) -> np.ndarray:
    """One-hot over the dataset's labels (GoEmotions: all of a comment's Ekman labels)."""
    names = [item.label]
    if item.dataset == "goemotions":
        names = [e for e in item.extra.get("ekman_labels", "").split("|") if e in labels]
    t: np.ndarray = np.zeros(len(labels), dtype=np.float32)
    for n in names or [item.label]:
        t[labels.index(n)] += 1.0
    return t / t.sum()
