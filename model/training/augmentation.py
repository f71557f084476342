"""Training-time augmentation of texts: how a live feed writes what the datasets rarely do.

The research datasets are mostly well-spelt Reddit comments and picture captions. A live
feed also says "livid" and "seething" (GoEmotions' training split has one "livid" and no
"seething"), writes "im so hapy", puts an emoji after a sentence, and negates one feeling
while expressing another ("not sad at all, I got the job"). Each training text of the text
fine-tuning gets, with probability ``fraction``, one extra copy rewritten by one of:

* :func:`intensify`: a mild emotion word replaced by a stronger word of the same emotion;
* :func:`misspell`: typos, chat spellings and lower case;
* :func:`add_emoji`: an emoji (or emoticon) of the text's own emotion after it;
* :func:`add_interjection`: a chat interjection of its emotion ("smh", "ugh", "lets gooo");
* :func:`negated_contrast`: a negated phrase of the opposite valence before it.

None of them changes what a reader takes from the text, so the copy keeps the original's
targets. The copies are made once, from a fixed seed, before the lower layers are cached;
validation and test texts are never augmented.
"""

from __future__ import annotations

import random
import re

INTENSE: dict[str, tuple[str, ...]] = {
    "anger": (
        "livid",
        "fuming",
        "seething",
        "furious",
        "enraged",
        "irate",
        "outraged",
        "infuriated",
        "raging",
        "pissed off",
        "incensed",
        "beyond angry",
    ),
    "disgust": (
        "revolting",
        "repulsive",
        "vile",
        "sickening",
        "nauseating",
        "repugnant",
        "gross beyond words",
        "stomach-turning",
    ),
    "fear": (
        "terrified",
        "petrified",
        "panicking",
        "freaked out",
        "scared to death",
        "shaking with fear",
        "horrified",
    ),
    "joy": (
        "thrilled",
        "ecstatic",
        "overjoyed",
        "stoked",
        "elated",
        "delighted",
        "over the moon",
        "buzzing",
    ),
    "sadness": (
        "heartbroken",
        "devastated",
        "gutted",
        "miserable",
        "crushed",
        "shattered",
        "in pieces",
    ),
    "surprise": (
        "stunned",
        "astonished",
        "speechless",
        "blown away",
        "gobsmacked",
        "flabbergasted",
        "floored",
    ),
}
"""Strong words of each emotion (written from the language, not from any dataset)."""

MILD: dict[str, tuple[str, ...]] = {
    "anger": ("angry", "mad", "pissed", "annoyed", "irritated", "furious", "frustrated"),
    "disgust": ("disgusting", "gross", "nasty", "disgusted", "revolting"),
    "fear": ("scared", "afraid", "frightened", "terrified"),
    "joy": ("happy", "glad", "pleased", "excited"),
    "sadness": ("sad", "upset", "unhappy", "depressed"),
    "surprise": ("surprised", "shocked", "amazed"),
}
"""The everyday words :func:`intensify` replaces."""

_MILD_RE = {
    emotion: re.compile(r"\b(" + "|".join(words) + r")\b", re.IGNORECASE)
    for emotion, words in MILD.items()
}

EMOJIS: dict[str, tuple[str, ...]] = {
    "anger": ("😡", "🤬", "😠", "😤", ">:("),
    "disgust": ("🤮", "🤢", "🤮🤮", "🙄"),
    "fear": ("😱", "😨", "😰", "😱😱"),
    "joy": ("😂", "🥳", "😍", "🎉", ":)", ":D", "❤️", "😊"),
    "sadness": ("😭", "💔", "😢", ":(", "😞", "😭😭"),
    "surprise": ("😮", "🤯", "😲", ":O", "😳"),
    "positive": ("😊", ":)", "👍", "❤️", "🎉"),
    "negative": ("😞", ":(", "👎", "😒", "😩"),
}
"""Emojis and emoticons a writer puts after a post of each emotion or sentiment."""

INTERJECTIONS: dict[str, tuple[str, ...]] = {
    "anger": ("smh", "wtf", "ffs", "ugh", "are you kidding me", "unbelievable", "seriously?!"),
    "disgust": ("ew", "eww", "yuck", "gross", "ick", "blegh"),
    "fear": ("yikes", "oh no", "eek", "help", "omg no"),
    "joy": ("lets gooo", "yesss", "woohoo", "yay", "lol", "haha", "best day ever"),
    "sadness": ("rip", "sigh", "ugh", "oof", "why me", "cant stop crying"),
    "surprise": ("wow", "whoa", "no way", "omg", "wait what", "i cant believe it"),
}
"""Chat interjections a writer puts before or after a post of each emotion."""

NEGATED: dict[str, tuple[str, ...]] = {
    "positive": (
        "Not sad at all.",
        "No complaints at all,",
        "Not angry, not worried,",
        "I'm not upset anymore,",
        "Nothing bad to report,",
        "Not scared one bit,",
    ),
    "negative": (
        "Not happy at all.",
        "Nothing about this was fun.",
        "I'm not okay.",
        "Not impressed.",
        "No joy here.",
        "Not feeling great,",
    ),
}
"""Negated phrases of the opposite valence, put before a text of the other valence."""

CHAT: tuple[tuple[str, str], ...] = (
    (r"\byou\b", "u"),
    (r"\bare\b", "r"),
    (r"\bplease\b", "pls"),
    (r"\bwhat\b", "wat"),
    (r"\bbecause\b", "cuz"),
    (r"\breally\b", "rly"),
    (r"\bgoing to\b", "gonna"),
    (r"\bwant to\b", "wanna"),
    (r"\boh my god\b", "omg"),
    (r"\bto be honest\b", "tbh"),
    (r"\bI don't know\b", "idk"),
    (r"\bthanks\b", "thx"),
    (r"\btonight\b", "tonite"),
    (r"\bbrother\b", "bro"),
    (r"\bfavourite\b|\bfavorite\b", "fav"),
    (r"\bhours\b", "hrs"),
)
"""Chat spellings :func:`misspell` may use."""


def intensify(text: str, rng: random.Random) -> str | None:
    """The first mild emotion word replaced by a strong word of the same emotion."""
    for emotion, pattern in _MILD_RE.items():
        if pattern.search(text):
            return pattern.sub(rng.choice(INTENSE[emotion]), text, count=1)
    return None


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(5)
    if kind == 0:
        return word[:i] + word[i + 1 :]  # a letter dropped
    if kind == 1:
        return word[:i] + word[i] + word[i:]  # a letter doubled
    if kind == 2:
        return word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]  # two letters swapped
    if kind == 3 and word.endswith("ing"):
        return word[:-1]  # "waitin"
    return word + word[-1] * rng.randrange(2, 4)  # "sooo"


def misspell(text: str, rng: random.Random) -> str:
    """Typos in about one word in seven, some chat spellings, often lower case and no
    apostrophes."""
    for pattern, short in CHAT:
        if rng.random() < 0.5:
            text = re.sub(pattern, short, text, flags=re.IGNORECASE)
    words = [
        _typo(w, rng) if w.isalpha() and len(w) > 3 and rng.random() < 0.15 else w
        for w in text.split(" ")
    ]
    text = " ".join(words)
    if rng.random() < 0.6:
        text = text.lower()
    if rng.random() < 0.6:
        text = text.replace("'", "").replace("’", "")
    return text


def add_emoji(text: str, feeling: str, rng: random.Random) -> str | None:
    """An emoji of ``feeling`` (an emotion or a sentiment) after the text, or before it."""
    if feeling not in EMOJIS:
        return None
    mark = rng.choice(EMOJIS[feeling])
    return f"{mark} {text}" if rng.random() < 0.2 else f"{text} {mark}"


def add_interjection(text: str, emotion: str, rng: random.Random) -> str | None:
    """A chat interjection of ``emotion`` before the text, or after it."""
    if emotion not in INTERJECTIONS:
        return None
    word = rng.choice(INTERJECTIONS[emotion])
    return f"{word} {text}" if rng.random() < 0.5 else f"{text} {word}"


def negated_contrast(text: str, valence: str, rng: random.Random) -> str | None:
    """A negated phrase of the other valence before a positive or negative text."""
    if valence not in NEGATED:
        return None
    return f"{rng.choice(NEGATED[valence])} {text}"


def augment(text: str, emotion: str | None, valence: str | None, rng: random.Random) -> str:
    """One rewritten copy of ``text``, whose emotion and valence (either may be None) are
    its targets', by an augmentation drawn at random among those that apply."""
    options = [lambda: intensify(text, rng), lambda: misspell(text, rng)]
    options.append(lambda: add_emoji(text, emotion or valence or "", rng))
    options.append(lambda: add_interjection(text, emotion or "", rng))
    options.append(lambda: negated_contrast(text, valence or "", rng))
    rng.shuffle(options)
    for option in options:
        out = option()
        if out is not None and out != text:
            return out
    return misspell(text, rng)
