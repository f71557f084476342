"""Label spaces: the two heads the served model predicts, and how each dataset maps onto them.

The served model has an *emotion* head over the Ekman-6 set plus neutral and a
*sentiment* head (negative / neutral / positive). Every dataset label maps onto one or
both heads, as the data README proposes (../shared/data/README.md, "Label spaces").
A ``None`` means "this dataset says nothing about that head for this label"; training
masks that target out.
"""

from __future__ import annotations

EKMAN: tuple[str, ...] = ("anger", "disgust", "fear", "joy", "sadness", "surprise")
EMOTIONS: tuple[str, ...] = (*EKMAN, "neutral")
"""The served emotion head: Ekman-6 and neutral (a live feed is mostly neutral posts)."""
SENTIMENTS: tuple[str, ...] = ("negative", "neutral", "positive")

# Emotion word -> valence, per the data README. Surprise has no fixed valence.
EMOTION_VALENCE: dict[str, str | None] = {
    "anger": "negative",
    "disgust": "negative",
    "fear": "negative",
    "sadness": "negative",
    "joy": "positive",
    "amusement": "positive",
    "contentment": "positive",
    "excitement": "positive",
    "awe": "positive",
    "surprise": None,
    "neutral": "neutral",
}

# Dataset label -> served emotion (None: no emotion counterpart).
EMOTION_MAP: dict[str, dict[str, str | None]] = {
    "reddit-emotions": {"anger": "anger", "disgust": "disgust", "fear": "fear", "joy": "joy"},
    "flickr-fi-text": {
        "amusement": "joy",
        "contentment": "joy",
        "excitement": "joy",
        "awe": "surprise",
        "anger": "anger",
        "disgust": "disgust",
        "fear": "fear",
        "sadness": "sadness",
    },
    "goemotions": {e: e for e in EMOTIONS},
    "emotion6": {e: e for e in EKMAN},
    "mvsa-single": {"negative": None, "neutral": None, "positive": None},
    "twitter-ii": {"negative": None, "positive": None},
}


def sentiment_of(dataset: str, label: str) -> str | None:
    """The sentiment a dataset label implies, or None when it implies none."""
    if label in SENTIMENTS and dataset in ("mvsa-single", "twitter-ii"):
        return label
    return EMOTION_VALENCE.get(label)


def emotion_of(dataset: str, label: str) -> str | None:
    """The served emotion a dataset label maps to, or None."""
    try:
        return EMOTION_MAP[dataset][label]
    except KeyError as exc:
        raise KeyError(f"unknown label {label!r} for dataset {dataset!r}") from exc
