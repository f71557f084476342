"""Training targets of the served model: an emotion and a sentiment distribution per item.

Each dataset supervises the heads it has labels for (see ``labels.py``); a head without
a target for an item gets ``None`` and is masked out of the loss. Where a dataset carries
richer annotation than its single ``label`` it is used:

* goemotions: all of the comment's 28-taxonomy labels (``labels``) mapped to the served
  emotions by ``labels.GOEMOTIONS_SERVED`` (questions and stances neutral), uniformly;
* emotion6: the valence score for sentiment (1-9; below 4.5 negative, above 5.5 positive,
  otherwise neutral). Its emotion target is the label alone: the user-study distribution
  (``prob_*``) as a soft target taught the served head the raters' spread instead of the
  label, and scored 14.6 points lower on emotion6 (test accuracy 0.465 against 0.611).
"""

from __future__ import annotations

import numpy as np

from emostream.model.training.datasets import Item
from emostream.model.training.labels import (
    EMOTIONS,
    SENTIMENTS,
    emotion_of,
    goemotions_emotions,
    goemotions_sentiments,
    sentiment_of,
)


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
        return _one_hot(EMOTIONS, goemotions_emotions(_fine(item)))
    e = emotion_of(item.dataset, item.label)
    return _one_hot(EMOTIONS, [e] if e else [])


def sentiment_target(item: Item) -> np.ndarray | None:
    """Distribution over ``SENTIMENTS`` or None."""
    if item.dataset == "emotion6":
        valence = float(item.extra["valence"])
        s = "negative" if valence < 4.5 else "positive" if valence > 5.5 else "neutral"
        return _one_hot(SENTIMENTS, [s])
    if item.dataset == "goemotions":
        known = goemotions_sentiments(_fine(item))
        # A comment that is both joyful and angry has no single valence: leave it out.
        return _one_hot(SENTIMENTS, known) if len(known) == 1 else None
    own = sentiment_of(item.dataset, item.label)
    return _one_hot(SENTIMENTS, [own] if own else [])


def _fine(item: Item) -> list[str]:
    """A GoEmotions comment's 28-taxonomy labels (the ``labels`` column)."""
    fine = item.extra.get("labels", "")
    if not fine:
        raise ValueError(f"{item.key}: a GoEmotions item needs its 28-taxonomy 'labels'")
    return fine.split("|")


def label_space(dataset: str, labels: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """The served classes a dataset's targets can fall on, per served head.

    Training restricts a row's softmax to these: reddit-emotions has no sadness and no
    neutral, so its posts teach the emotion head nothing about either. GoEmotions (all of
    a comment's labels) and emotion6 (its valence score) can reach every sentiment.
    """
    emotion = {emotion_of(dataset, label) for label in labels}
    sentiment = {sentiment_of(dataset, label) for label in labels}
    if dataset == "goemotions":
        emotion, sentiment = set(EMOTIONS), set(SENTIMENTS)
    if dataset == "emotion6":
        sentiment = set(SENTIMENTS)
    return {
        "emotion": tuple(e for e in EMOTIONS if e in emotion),
        "sentiment": tuple(s for s in SENTIMENTS if s in sentiment),
    }


def dataset_target(item: Item, labels: tuple[str, ...]) -> np.ndarray:
    """One-hot over the dataset's labels (GoEmotions: all of a comment's served emotions)."""
    names = [item.label]
    if item.dataset == "goemotions":
        names = [e for e in goemotions_emotions(_fine(item)) if e in labels]
    return label_distribution(names or [item.label], labels)


def label_distribution(names: list[str], labels: tuple[str, ...]) -> np.ndarray:
    """``names`` (each one of ``labels``) as a distribution over ``labels``; no names: zeros."""
    t: np.ndarray = np.zeros(len(labels), dtype=np.float32)
    for n in names:
        t[labels.index(n)] += 1.0
    return t / max(float(t.sum()), 1.0)
