"""Text as the encoder should read it: emojis and emoticons turned into words.

MiniLM's vocabulary has no emojis: ``😡😡😡`` tokenises to ``[UNK]`` and the model sees
nothing. Every text is normalised here before tokenisation (training, evaluation, the
worker, the API, ``classify`` and the ONNX path all go through ``EmotionEncoder`` or the
fine-tuning cache, which call :func:`normalize`):

* each emoji becomes its CLDR name from the maintained ``emoji`` package (``😭`` →
  "loudly crying face"), or, for the few whose name does not say what a reader takes
  from them (``🤬`` is "face with symbols on mouth"), a short description in
  :data:`EMOJI_WORDS`; a repeated emoji stays repeated (emphasis);
* common emoticons (``:)`` ``:(`` ``xD`` ``<3`` ...) become words, matched only between
  spaces or punctuation, so URLs and times are left alone;
* whitespace is collapsed.

:data:`VERSION` names this recipe; it is part of the encoder version, so features cached
under another recipe are never reused.
"""

from __future__ import annotations

import re

import emoji

VERSION = "norm1"

EMOJI_WORDS: dict[str, str] = {
    "🤬": "cursing furious angry face",
    "😤": "fuming angry face",
    "😠": "angry face",
    "😡": "enraged angry face",
    "👿": "angry devil face",
    "🤮": "vomiting disgusted face",
    "🤢": "nauseated disgusted face",
    "🙄": "annoyed eye roll",
    "😒": "unamused annoyed face",
    "😂": "laughing with tears of joy",
    "🤣": "laughing so hard",
    "😍": "heart eyes in love",
    "🥰": "smiling face with hearts in love",
    "🥳": "partying celebrating face",
    "🎉": "party celebration",
    "🎊": "confetti celebration",
    "😱": "screaming in fear face",
    "😰": "anxious face with sweat",
    "😨": "fearful scared face",
    "😬": "grimacing nervous face",
    "😳": "flushed embarrassed face",
    "🤯": "mind blown shocked",
    "😮": "surprised face with open mouth",
    "😲": "astonished face",
    "😩": "weary tired face",
    "😞": "disappointed sad face",
    "😔": "pensive sad face",
    "🥺": "pleading teary face",
    "🤔": "thinking face",
}
"""Emojis whose CLDR name misses the feeling a reader takes from them."""

_EMOTICONS: tuple[tuple[str, str], ...] = (
    (r">:-?\(", "angry face"),
    (r":'-?\(", "crying face"),
    (r":-?\)+|\(+-?:|=\)|\^_\^|\^\^", "smiling face"),
    (r":-?D+|[xX]D+|=D", "laughing face"),
    (r":-?\(+|\)+-?:|=\(", "sad face"),
    (r";-?\)", "winking face"),
    (r":-?[pP]", "playful face"),
    (r":-?[oO]", "surprised face"),
    (r"D:", "horrified face"),
    (r"-_-", "unimpressed face"),
    (r":-?[/\\]", "uneasy face"),
    (r":-?\|", "neutral face"),
    (r"</3", "broken heart"),
    (r"<3+", "red heart"),
)
"""Emoticon pattern -> words (first match wins, so ``>:(`` is read before ``:(``)."""

_EMOTICON_RE = re.compile(
    r"(?<![\w:/])(" + "|".join(f"(?:{p})" for p, _ in _EMOTICONS) + r")(?![\w/])"
)
_EMOTICON_PATTERNS = [(re.compile(f"(?:{p})$"), words) for p, words in _EMOTICONS]
_SPACES = re.compile(r"\s+")
_SKIN_TONE = re.compile(r"_(?:medium-)?(?:light|medium|dark)_skin_tone")


def _emoji_words(chars: str, data: dict) -> str:
    words = EMOJI_WORDS.get(chars.replace("\ufe0f", ""))
    if words is None:
        words = _SKIN_TONE.sub("", data["en"].strip(":")).replace("_", " ")
    return f" {words} "


def _emoticon_words(match: re.Match[str]) -> str:
    token = match.group(1)
    for pattern, words in _EMOTICON_PATTERNS:
        if pattern.match(token):
            return f" {words} "
    return token


def normalize(text: str) -> str:
    """``text`` with emojis and emoticons as words and whitespace collapsed."""
    if not text:
        return text
    out = emoji.replace_emoji(text, replace=_emoji_words)
    out = _EMOTICON_RE.sub(_emoticon_words, out)
    return _SPACES.sub(" ", out).strip()
