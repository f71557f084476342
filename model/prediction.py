"""What the classifier says about one post (no torch here: the API and the store use it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Prediction:
    label: str
    """The most probable emotion."""
    emotions: dict[str, float]
    sentiment: str
    sentiments: dict[str, float]
    modalities: tuple[str, ...]
    """What the prediction used: ("text",), ("image",) or ("text", "image")."""
    image_status: str
    model_version: str
    language: str = ""
    """The language of the post's text (ISO 639-1; ``und``: too little text to tell;
    "": no text)."""
    status: str = "classified"
    """``classified``; ``unsupported_language``: not classified (label, sentiment and
    scores empty), its text is in a language the model cannot read; ``unclassifiable``: no
    text and no usable picture."""

    @classmethod
    def unclassifiable(cls, image_status: str, model_version: str) -> Prediction:
        """A post with no text whose picture could not be used: nothing to classify."""
        return cls("", {}, "", {}, (), image_status, model_version, status="unclassifiable")

    def to_dict(self) -> dict:
        return asdict(self)
