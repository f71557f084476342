"""The language of a post's text, and whether the served model can read it.

The text encoder and the heads were trained on English posts only: a post in another
language gets an English model's guess, often a confident one. ``LanguageDetector`` names
the language of each text (ISO 639-1, or ``und`` when there is too little to tell) with
a detector whose model ships inside its package, so it runs offline:

- ``py3langid`` (default): langid.py's naive Bayes over byte n-grams, 97 languages,
  about 0.1 ms a post; its probabilities are normalised and a text is called foreign only
  when the detector gives it at least ``min_confidence``;
- ``lingua``: lingua-language-detector's n-gram models (75 languages, about 100 MB);
- ``pycld2``: Google's Compact Language Detector 2.

``bench/language_detectors.py`` compares them on short posts (accuracy and cost).

What is left of a post for the detector is its letters: links, @mentions, #hashtag marks,
emojis, digits and punctuation are removed first. A text with fewer than
``min_letters`` letters is ``und``: an emoji-only post or "lol" is read like English,
since the normaliser turns emojis into English words.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

SUPPORTED = frozenset({"en"})
"""Languages the served model reads."""
UNDETERMINED = "und"
"""Too little text to tell (read as English: emoji-only posts, "lol", "ok")."""
BACKENDS = ("py3langid", "lingua", "pycld2")
ENGLISH_LIKE = frozenset({"pcm"})
"""Languages py3langid confuses with short English posts; left out of its candidates."""

_NOISE = re.compile(r"https?://\S+|www\.\S+|@[\w.]+|[^\w\s]|\d|_", re.UNICODE)


def letters_of(text: str) -> str:
    """The words of ``text`` without links, mentions, hashtags, emojis, digits, punctuation."""
    return " ".join(_NOISE.sub(" ", text).split())


def readable(language: str) -> bool:
    """Whether the served model can read text in ``language``."""
    return language in SUPPORTED or language == UNDETERMINED


@cache
def _py3langid() -> Callable[[str], tuple[str, float]]:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    # Nigerian Pidgin is English-based: py3langid names short English posts "pcm" (9 of the
    # first 3,000 GoEmotions training comments), never the reverse that matters here
    identifier.set_languages([lang for lang in identifier.nb_classes if lang not in ENGLISH_LIKE])
    return identifier.classify


@cache
def _lingua() -> Callable[[str], tuple[str, float]]:
    from lingua import LanguageDetectorBuilder

    detector = LanguageDetectorBuilder.from_all_languages().build()

    def classify(text: str) -> tuple[str, float]:
        values = detector.compute_language_confidence_values(text)
        if not values:
            return UNDETERMINED, 0.0
        top = values[0]
        return top.language.iso_code_639_1.name.lower(), top.value

    return classify


@cache
def _pycld2() -> Callable[[str], tuple[str, float]]:
    import pycld2

    def classify(text: str) -> tuple[str, float]:
        reliable, _, details = pycld2.detect(text)
        code = details[0][1]
        if code == "un" or not reliable:
            return UNDETERMINED, 0.0
        return code.split("-")[0], details[0][2] / 100

    return classify


_LOADERS = {"py3langid": _py3langid, "lingua": _lingua, "pycld2": _pycld2}


class LanguageDetector:
    """``detect(text)`` -> ISO 639-1 code, or ``und``."""

    def __init__(
        self, backend: str = "py3langid", min_letters: int = 12, min_confidence: float = 0.5
    ) -> None:
        if backend not in _LOADERS:
            raise ValueError(f"language detector {backend!r} is not one of {BACKENDS}")
        self.backend = backend
        self.min_letters = min_letters
        """Texts with fewer letters than this (spaces not counted) are ``und``."""
        self.min_confidence = min_confidence
        """A language other than English is named only at this probability or above;
        below it the text is read as English (a short English post with slang or names
        is where detectors err, and dropping it would lose an English post)."""
        self._classify = _LOADERS[backend]()

    def detect(self, text: str) -> str:
        words = letters_of(text)
        latin = sum(c.isalpha() and c <= "\u024f" for c in words)
        other = sum(c.isalpha() for c in words) - latin
        if other >= 2 and other > latin:
            # another script (CJK, Cyrillic, Arabic, ...): the encoder cannot read it at
            # any length, so the detector only has to say which language it is
            code, _ = self._classify(words)
            return code if code not in SUPPORTED else UNDETERMINED
        if latin < self.min_letters:
            return UNDETERMINED
        code, confidence = self._classify(words)
        if code in SUPPORTED or code == UNDETERMINED:
            return code
        return code if confidence >= self.min_confidence else "en"

    def detect_many(self, texts: list[str]) -> list[str]:
        return [self.detect(t) for t in texts]
