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


GOEMOTIONS_SERVED: dict[str, str] = {
    **dict.fromkeys(("anger", "annoyance"), "anger"),
    "disgust": "disgust",
    **dict.fromkeys(("fear", "nervousness"), "fear"),
    **dict.fromkeys(
        ("joy", "amusement", "excitement", "gratitude", "love", "optimism", "relief", "pride"),
        "joy",
    ),
    **dict.fromkeys(("admiration", "desire", "caring"), "joy"),
    **dict.fromkeys(("sadness", "disappointment", "embarrassment", "grief", "remorse"), "sadness"),
    "surprise": "surprise",
    **dict.fromkeys(
        ("neutral", "curiosity", "confusion", "realization", "approval", "disapproval"),
        "neutral",
    ),
}
"""GoEmotions' 28 labels -> the served emotion, by the guide in docs/labels.md: surprise is
astonishment; questions (curiosity, confusion), realisations and stances (approval,
disapproval) express no emotion and are neutral. The published Ekman grouping differs in
those six labels (curiosity, confusion, realization -> surprise; approval -> joy;
disapproval -> anger) and is kept for comparison (``ekman_label``)."""

GOEMOTIONS_VALENCE: dict[str, str] = {
    "approval": "positive",
    "disapproval": "negative",
    "curiosity": "neutral",
    "confusion": "neutral",
    "realization": "neutral",
}
"""Sentiment of the GoEmotions labels the served emotion calls neutral: a stance keeps its
valence."""

GOEMOTIONS_ORDER: tuple[str, ...] = (
    "anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"
)  # fmt: skip
"""The order in which the data's ``label`` column picks a comment's first label."""


def goemotions_emotions(fine: list[str]) -> list[str]:
    """The served emotions of a comment's 28-taxonomy labels (neutral only when no label
    expresses an emotion), each once, in ``GOEMOTIONS_ORDER``."""
    mapped = {GOEMOTIONS_SERVED[f] for f in fine if f in GOEMOTIONS_SERVED}
    if len(mapped) > 1:
        mapped.discard("neutral")
    return [e for e in GOEMOTIONS_ORDER if e in mapped]


def goemotions_sentiments(fine: list[str]) -> list[str]:
    """The sentiments a comment's 28-taxonomy labels imply (surprise implies none);
    neutral only when no label carries a valence."""
    known = set()
    for f in fine:
        v = GOEMOTIONS_VALENCE.get(f) or EMOTION_VALENCE.get(GOEMOTIONS_SERVED.get(f, ""))
        if v:
            known.add(v)
    if len(known) > 1:
        known.discard("neutral")
    return [s for s in SENTIMENTS if s in known]


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
