"""The served classifier: posts in, emotion and sentiment predictions out.

    clf = EmotionClassifier()                      # shipped common-space weights
    [p] = clf.classify([PostInput(text="what a day", image=jpeg_bytes)])
    p.label, p.emotions["joy"], p.sentiment, p.modalities, p.model_version

Every prediction says which modalities it used and carries the model version. A post
whose image cannot be decoded is classified on its text (``image_status`` says why).

Every prediction names the language of its text (``model/language.py``). The model reads
English only; what becomes of a text in another language is ``unsupported_language``:

- ``image`` (default): the post is classified from its picture alone when it has one;
  otherwise its status is ``unsupported_language``, with no emotion and no sentiment;
- ``skip``: such a post is never classified (``unsupported_language``, picture or not);
- ``read``: the text is read as if it were English (the English model's guess).
"""

from __future__ import annotations

import torch

from .encoder import IMAGE, TEXT, EncodedBatch, Encoder, PostInput, pick_device
from .prediction import Prediction
from .weights import Weights

__all__ = ["EmotionClassifier", "PostInput", "Prediction"]


class EmotionClassifier:
    def __init__(
        self,
        weights: Weights = Weights.DEFAULT,
        device=None,
        precision: str = "auto",
        runtime: str = "auto",
        unsupported_language: str = "image",
    ) -> None:
        if unsupported_language not in LANGUAGE_POLICIES:
            raise ValueError(
                f"unsupported_language must be one of {LANGUAGE_POLICIES}, "
                f"not {unsupported_language!r}"
            )
        self.unsupported_language = unsupported_language
        self.device = pick_device(device)
        self.model, self.card = weights.load(self.device)
        self.version: str = self.card["version"]
        self.emotions: tuple[str, ...] = tuple(self.card["heads"]["emotion"])
        self.sentiments: tuple[str, ...] = tuple(self.card["heads"]["sentiment"])
        calibration = self.card.get("calibration", {})
        self.temperature = {h: calibration.get(h, {}).get("temperature", 1.0) for h in HEADS}
        """Per head, the logits are divided by this before the softmax (calibrated scores)."""
        enc = self.card["encoders"]
        self.encoder = Encoder(
            enc["image"],
            enc["text"],
            self.device,
            precision=precision,
            runtime=runtime,
            normalization=enc.get("normalization"),
            read_any_language=unsupported_language == "read",
        )
        if self.encoder.version != enc["version"]:
            raise RuntimeError(
                f"weights were trained on encoders {enc['version']}, "
                f"but this install provides {self.encoder.version}"
            )

    def classify(self, posts: list[PostInput], strict: bool = True) -> list[Prediction]:
        """One forward pass for the batch. ``strict``: a post with neither modality raises."""
        return self.predict_encoded(self.encoder.encode(posts, strict=strict))

    @torch.inference_mode()
    def predict_encoded(self, batch: EncodedBatch) -> list[Prediction | None]:
        """Predictions for an encoded batch; None for a post with no modality at all."""
        dev = self.device
        out = self.model(batch.text.to(dev), batch.image.to(dev), batch.mask.to(dev))
        emo = (out.logits["emotion"].float() / self.temperature["emotion"]).softmax(-1).cpu()
        sen = (out.logits["sentiment"].float() / self.temperature["sentiment"]).softmax(-1).cpu()
        preds: list[Prediction | None] = []
        for i in range(len(batch)):
            m = batch.mask[i]
            language = batch.language[i] if batch.language else ""
            unread = batch.unread(i)
            if unread and (self.unsupported_language == "skip" or not m.any()):
                preds.append(self._not_read(language, batch.image_status[i]))
                continue
            if not m.any():
                preds.append(None)
                continue
            mods = tuple(n for n, j in (("text", TEXT), ("image", IMAGE)) if m[j])
            preds.append(
                Prediction(
                    label=self.emotions[int(emo[i].argmax())],
                    emotions=_rounded(self.emotions, emo[i]),
                    sentiment=self.sentiments[int(sen[i].argmax())],
                    sentiments=_rounded(self.sentiments, sen[i]),
                    modalities=mods,
                    image_status=batch.image_status[i],
                    model_version=self.version,
                    language=language,
                )
            )
        return preds

    def _not_read(self, language: str, image_status: str) -> Prediction:
        return Prediction(
            label="",
            emotions={},
            sentiment="",
            sentiments={},
            modalities=(),
            image_status=image_status,
            model_version=self.version,
            language=language,
            status="unsupported_language",
        )


HEADS = ("emotion", "sentiment")
LANGUAGE_POLICIES = ("image", "skip", "read")
"""What becomes of a post whose text the model cannot read (see the module docstring)."""


def _rounded(names: tuple[str, ...], probs: torch.Tensor) -> dict[str, float]:
    return {n: round(float(p), 5) for n, p in zip(names, probs, strict=True)}
