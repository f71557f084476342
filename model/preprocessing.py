"""Image bytes -> a uint8 CHW tensor ready for the image backbone, with Pillow.

JPEGs are decoded in draft mode (libjpeg's DCT scaling gives a picture at 1/2, 1/4 or
1/8 size for a fraction of the cost), EXIF orientation is applied, transparency is
composited on white, the shorter side is resized to ``resize`` and the centre
``crop`` x ``crop`` is cut. Normalisation happens later, on the batch, on the device.

Every failure raises :class:`ImageDecodeError` with a short reason code, so a caller can
classify the post text-only and count why.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

#: Largest picture we agree to decode (pixels); more is treated as a decompression bomb.
DEFAULT_MAX_PIXELS = 40_000_000
#: Longest side we agree to decode (pixels).
DEFAULT_MAX_SIDE = 20_000
#: Most elongated picture we agree to decode (long side / short side). A 1 x 4,000 strip
#: would be resized to 256 x 1,024,000 before its centre is cut: seconds and a gigabyte.
DEFAULT_MAX_ASPECT = 20.0


class ImageDecodeError(ValueError):
    """The bytes are not a picture we can use. ``reason`` is a short code for metrics."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class ImageTransform:
    """Resize the shorter side to ``resize``, centre-crop ``crop``; normalise with mean/std."""

    resize: int = 256
    crop: int = 224
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_side: int = DEFAULT_MAX_SIDE
    max_aspect: float = DEFAULT_MAX_ASPECT
    draft: bool = True

    def check_size(self, w: int, h: int) -> None:
        """Refuse, from the header's size alone, what would be costly or absurd to decode:
        ``too_many_pixels`` (area or a side over the caps), ``bad_dimensions`` (a zero side
        or an aspect ratio over ``max_aspect``)."""
        if w < 1 or h < 1:
            raise ImageDecodeError("bad_dimensions", f"{w}x{h}")
        if w * h > self.max_pixels or max(w, h) > self.max_side:
            raise ImageDecodeError("too_many_pixels", f"{w}x{h}")
        if max(w, h) / min(w, h) > self.max_aspect:
            raise ImageDecodeError("bad_dimensions", f"{w}x{h}: aspect over {self.max_aspect:g}")

    def decode(self, data: bytes) -> torch.Tensor:
        """Bytes -> uint8 tensor of shape (3, crop, crop)."""
        if not data:
            raise ImageDecodeError("empty")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img = Image.open(io.BytesIO(data))
                self.check_size(*img.size)
                if self.draft and img.format == "JPEG":
                    img.draft("RGB", (self.resize, self.resize))
                img.load()
                img = ImageOps.exif_transpose(img)
                img = _to_rgb(img)
                img = _resize_shorter(img, self.resize)
                img = _centre_crop(img, self.crop)
        except ImageDecodeError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageDecodeError("too_many_pixels", str(exc)) from exc
        except (
            UnidentifiedImageError,
            OSError,
            SyntaxError,
            ValueError,
            EOFError,
            OverflowError,
            IndexError,
            TypeError,
        ) as exc:
            raise ImageDecodeError("undecodable", f"{type(exc).__name__}: {exc}") from exc
        # HWC -> CHW with numpy, not torch: decoding runs in a pool of threads, and a torch
        # op there (a parallel copy) would start an OpenMP team per thread, whose spinning
        # slows the model thread by a fifth on 2 cores (bench/cpu_contention.py).
        chw = np.ascontiguousarray(np.asarray(img, dtype=np.uint8).transpose(2, 0, 1))
        return torch.from_numpy(chw)

    def normalise_on_cpu(self, images: list[torch.Tensor]) -> torch.Tensor:
        """uint8 (3, H, W) pictures on the CPU -> one float normalised (B, 3, H, W) batch,
        contiguous (NCHW). Stacked and scaled in numpy, in place: the same numbers as
        ``normalise`` of their stack, with one copy instead of four and no torch thread team
        beside the model's."""
        batch = np.stack([im.numpy() for im in images]).astype(np.float32)
        scale = 1.0 / (255.0 * np.asarray(self.std, dtype=np.float32))
        shift = np.asarray(self.mean, dtype=np.float32) / np.asarray(self.std, dtype=np.float32)
        batch *= scale.reshape(1, 3, 1, 1)
        batch -= shift.reshape(1, 3, 1, 1)
        return torch.from_numpy(batch)

    def normalise(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 (B, 3, H, W) -> float normalised, on the batch's device, channels_last."""
        mean = torch.tensor(self.mean, device=batch.device).view(1, 3, 1, 1) * 255.0
        std = torch.tensor(self.std, device=batch.device).view(1, 3, 1, 1) * 255.0
        out = (batch.float() - mean) / std
        return out.contiguous(memory_format=torch.channels_last)


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


def _resize_shorter(img: Image.Image, size: int) -> Image.Image:
    w, h = img.size
    if min(w, h) == size:
        return img
    scale = size / min(w, h)
    new = (max(size, round(w * scale)), max(size, round(h * scale)))
    return img.resize(new, Image.Resampling.BILINEAR, reducing_gap=None)


def _centre_crop(img: Image.Image, size: int) -> Image.Image:
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    return img.crop((left, top, left + size, top + size))
