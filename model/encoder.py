"""The batch API over the frozen encoders: posts in, features and a modality mask out.

A post is text (or None) and image bytes (or None). The result holds one text and one
image feature row per post, zeros where the modality is absent, and a boolean mask
``(B, 2)`` whose columns are ``TEXT`` and ``IMAGE`` that says which rows are real. An image
that fails to decode makes that post text-only; its reason is in ``image_status``.
A post with neither text nor a usable image is an error, unless ``strict=False``, in
which case it is reported in ``empty`` and the caller decides.

Each text's language is detected (``model/language.py``); a text the model cannot read
is left out of the text modality (its row stays zero, ``language`` names it), unless
``read_any_language`` is set. A post whose only text is unreadable is not an error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .backbones import ImageBackbone, TextBackbone, image_backbone, text_backbone
from .language import LanguageDetector, readable
from .preprocessing import ImageDecodeError
from .text_normalization import VERSION as TEXT_NORMALIZATION
from .text_normalization import normalize

TEXT, IMAGE = 0, 1


@dataclass(frozen=True)
class PostInput:
    """What the model sees of a post."""

    text: str | None = None
    image: bytes | torch.Tensor | None = None
    """Encoded image bytes, or an already decoded uint8 (3, H, W) tensor."""


@dataclass
class EncodedBatch:
    text: torch.Tensor  # (B, text_dim) float32
    image: torch.Tensor  # (B, image_dim) float32
    mask: torch.Tensor  # (B, 2) bool: [has_text, has_image]
    image_status: list[str]  # "ok", "absent" or "error:<reason>" per post
    language: list[str] | None = None
    """Per post, the language of its text (ISO 639-1, ``und``; "" without text)."""

    def unread(self, i: int) -> bool:
        """Post ``i`` has text in a language the model cannot read, left out of the mask."""
        return self.language is not None and not readable(self.language[i] or "en")

    def __len__(self) -> int:
        return self.mask.shape[0]


class EmptyPostError(ValueError):
    """A post had neither text nor a usable image."""


def pick_device(device: str | torch.device | None = None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def pick_precision(precision: str, device: torch.device) -> str:
    """``auto`` is fp16 on CUDA (tensor cores) and fp32 on CPU; else one of PRECISIONS."""
    if precision == "auto":
        return "fp16" if device.type == "cuda" else "fp32"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be auto, {', '.join(PRECISIONS)}; got {precision!r}")
    return precision


def pick_runtime(runtime: str, device: torch.device, text: TextBackbone) -> str:
    """``auto``: ONNX Runtime (fp32) on CPU when it is installed and the text backbone
    exports; else torch. ``onnx`` and ``onnx-int8`` are refused on a GPU or for a backbone
    that cannot export."""
    from .onnx_runtime import RUNTIMES

    if runtime != "auto" and runtime not in RUNTIMES:
        raise ValueError(f"runtime must be auto, {', '.join(RUNTIMES)}; got {runtime!r}")
    exportable = device.type == "cpu" and text.build_net is not None
    if runtime == "auto":
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return "eager"
        return "onnx" if exportable else "eager"
    if runtime.startswith("onnx") and not exportable:
        raise ValueError(
            f"runtime onnx needs the CPU and an exportable text backbone ({text.name})"
        )
    return runtime


class Encoder:
    """Frozen image + text encoders behind one batch call."""

    def __init__(
        self,
        image: str | ImageBackbone = "efficientnet-lite0",
        text: str | TextBackbone = "all-minilm-l6-v2",
        device: str | torch.device | None = None,
        *,
        precision: str = "auto",
        channels_last: bool = True,
        runtime: str = "eager",
        normalization: str | None = TEXT_NORMALIZATION,
        read_any_language: bool = False,
    ) -> None:
        if normalization not in (None, TEXT_NORMALIZATION):
            raise ValueError(
                f"unknown text normalization {normalization!r} (this install has "
                f"{TEXT_NORMALIZATION!r} or none)"
            )
        self.normalization = normalization
        """The text recipe of ``model/text_normalization.py`` applied before tokenising
        (None: raw text, as the heads of ``Weights.COMMONSPACE_V1`` were trained)."""
        self.languages = LanguageDetector()
        self.read_any_language = read_any_language
        """Read every text as English (no text is left out for its language)."""
        self.image_backbone = image_backbone(image) if isinstance(image, str) else image
        self.text_backbone = text_backbone(text) if isinstance(text, str) else text
        self.device = pick_device(device)
        self.precision = pick_precision(precision, self.device)
        """Autocast dtype of both encoders' forward passes (features come out float32)."""
        self.channels_last = channels_last
        """Image batches and the image network in NHWC layout (faster convolutions)."""
        self.runtime = pick_runtime(runtime, self.device, self.text_backbone)
        """``eager`` (torch), ``onnx`` (ONNX Runtime, fp32), ``onnx-int8`` (int8 text
        weights) or ``onnx-int8-image`` (static int8 image encoder, fp32 text); see
        ``model/onnx_runtime.py``. ``auto``: onnx on CPU where the text
        backbone can be exported, eager otherwise."""
        cuda = self.device.type == "cuda"
        onnx = self.runtime.startswith("onnx")
        self.image_pass = 128 if cuda else (8 if onnx else 4)
        """Pictures per forward pass. On CPU, EfficientNet-Lite0 on torch is fastest in small
        passes (``python -m bench.encoders`` on 2 cores, channels_last: 72 / 90 / 101 / 83 /
        49 images/s at 1 / 2 / 4 / 8 / 32 per pass): larger ones spill the caches; on ONNX
        Runtime 8 (``python -m bench.cpu_runtime --passes``). On a GPU large passes fill the
        device."""
        self.text_pass = 256 if cuda else 16
        """Texts per forward pass (torch on CPU: 101 / 137 / 146 / 116 texts/s at 1 / 8 / 16
        / 32; ONNX Runtime, ``classify`` on batches of 64 GoEmotions comments: 522 / 549 /
        495 / 371 posts/s at 8 / 16 / 32 / 64, ``python -m bench.cpu_runtime --passes``).
        Each pass pads its texts to the longest, so smaller passes of length-sorted texts
        pad less."""
        self._image_net: torch.nn.Module | None = None
        self._text_fn: Callable[[list[str], int], torch.Tensor] | None = None

    @property
    def version(self) -> str:
        """Identifies the features: keys the feature cache, travels with predictions."""
        text = self.text_backbone.version
        if self.normalization:
            text = f"{text}+{self.normalization}"
        return f"{self.image_backbone.version}+{text}"

    @property
    def feature_version(self) -> str:
        """Identifies the feature values: the version, plus the runtime where it changes
        them (keys the feature cache)."""
        if self.runtime == "eager":
            return self.version
        from .onnx_runtime import IMAGE_INT8_RECIPE, INT8_RECIPE

        tag = {
            "onnx-int8": f"onnx-int8-{INT8_RECIPE}",
            "onnx-int8-image": f"onnx-int8-image-{IMAGE_INT8_RECIPE}",
        }.get(self.runtime, self.runtime)
        return f"{self.version}+{tag}"

    @property
    def transform(self):
        return self.image_backbone.transform

    # -- the two encoders, loaded on first use -------------------------------------------
    def _image_model(self) -> torch.nn.Module:
        if self._image_net is None and self.runtime.startswith("onnx"):
            from .onnx_runtime import ImageSession

            bb = self.image_backbone
            int8 = self.runtime == "onnx-int8-image"
            self._image_net = ImageSession(bb.version, bb.build, self.transform.crop, int8)  # type: ignore[assignment]
        if self._image_net is None:
            net = self.image_backbone.build().eval().to(self.device)
            if self.channels_last:
                net = net.to(memory_format=torch.channels_last)
            self._image_net = net
        return self._image_net

    def _autocast(self):
        return torch.autocast(
            self.device.type,
            dtype=PRECISIONS[self.precision],
            enabled=self.precision != "fp32",
        )

    def encode_texts(self, texts: list[str], batch_size: int | None = None) -> torch.Tensor:
        """(N, text_dim) features on the CPU."""
        if not texts:
            return torch.zeros(0, self.text_backbone.dim)
        if self._text_fn is None:
            self._text_fn = self._build_text()
        if self.normalization:
            texts = [normalize(t) for t in texts]
        cut = [t[: self.text_backbone.max_chars] for t in texts]
        batch_size = batch_size or self.text_pass
        with torch.inference_mode(), self._autocast():
            return self._text_fn(cut, batch_size).float().cpu()

    def _build_text(self) -> Callable[[list[str], int], torch.Tensor]:
        bb = self.text_backbone
        if self.runtime.startswith("onnx") and bb.build_net is not None:
            from .onnx_runtime import text_encoder

            return text_encoder(bb.version, bb.build_net, int8=self.runtime == "onnx-int8")
        return bb.build(self.device)

    def encode_images(self, images: list[torch.Tensor], batch_size: int | None = None):
        """Decoded uint8 (3, H, W) tensors -> (N, image_dim) features on the CPU.

        Forward passes take ``batch_size`` pictures at a time (default ``image_pass``).
        """
        if not images:
            return torch.zeros(0, self.image_backbone.dim)
        batch_size = batch_size or self.image_pass
        net = self._image_model()
        cuda = self.device.type == "cuda"
        out = []
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                x = self._pixels(images[start : start + batch_size], cuda)
                with self._autocast():
                    out.append(net(x).float())
        return torch.cat(out).cpu()

    def _pixels(self, part: list[torch.Tensor], cuda: bool) -> torch.Tensor:
        """A pass's decoded pictures -> the network's normalised input, on its device, in
        the layout it runs fastest in (ONNX Runtime: NCHW; eager: ``channels_last``)."""
        if not cuda:
            x = self.transform.normalise_on_cpu(part)
            eager_cl = self.channels_last and not self.runtime.startswith("onnx")
            return x.contiguous(memory_format=torch.channels_last) if eager_cl else x
        if any(im.is_cuda for im in part):  # decoded on the GPU already
            chunk = torch.stack([im.to(self.device) for im in part])
        else:  # pinned: the copy runs asynchronously
            chunk = torch.stack(part).pin_memory().to(self.device, non_blocking=True)
        x = self.transform.normalise(chunk)
        return x if self.channels_last else x.contiguous()

    def decode(self, data: bytes) -> torch.Tensor:
        """Image bytes -> uint8 tensor; raises ImageDecodeError."""
        return self.transform.decode(data)

    # -- the batch API -------------------------------------------------------------------
    def encode(self, posts: list[PostInput], strict: bool = True) -> EncodedBatch:
        n = len(posts)
        mask = torch.zeros(n, 2, dtype=torch.bool)
        status: list[str] = []
        decoded: dict[int, torch.Tensor] = {}
        for i, post in enumerate(posts):
            if post.image is None:
                status.append("absent")
                continue
            try:
                img = (
                    post.image if isinstance(post.image, torch.Tensor) else self.decode(post.image)
                )
                decoded[i] = img
                status.append("ok")
            except ImageDecodeError as exc:
                status.append(f"error:{exc.reason}")
        texts = {i: p.text for i, p in enumerate(posts) if p.text is not None and p.text.strip()}
        language = [""] * n
        for i, t in texts.items():
            language[i] = self.languages.detect(t)
        texts = self.readable_texts(texts, language)
        empty = [
            i
            for i in range(n)
            if i not in texts and i not in decoded and readable(language[i] or "en")
        ]
        if empty and strict:
            raise EmptyPostError(
                f"posts at positions {empty} have neither text nor a usable image "
                f"(image status: {[status[i] for i in empty]})"
            )
        text_feats = torch.zeros(n, self.text_backbone.dim)
        image_feats = torch.zeros(n, self.image_backbone.dim)
        if texts:
            idx = list(texts)
            text_feats[idx] = self.encode_texts([texts[i] for i in idx])
            mask[idx, TEXT] = True
        if decoded:
            idx = list(decoded)
            image_feats[idx] = self.encode_images([decoded[i] for i in idx])
            mask[idx, IMAGE] = True
        return EncodedBatch(text_feats, image_feats, mask, status, language)

    def readable_texts(self, texts: dict[int, str], language: list[str]) -> dict[int, str]:
        """The texts the model reads: all with ``read_any_language``, else those whose
        language it can read."""
        if self.read_any_language:
            return texts
        return {i: t for i, t in texts.items() if readable(language[i])}
