"""JPEG decoding on the GPU (nvJPEG through ``torchvision.io.decode_jpeg``), when it loads.

On a GPU worker, decoding pictures with Pillow on a handful of CPU cores becomes the
bottleneck long before the GPU does. ``GpuJpegDecoder`` decodes a whole batch of JPEGs
in one nvJPEG call, then resizes and centre-crops on the GPU with the same geometry as
the Pillow path (shorter side to ``resize``, antialiased bilinear, centre ``crop``).

It keeps every guard of the CPU path: the pixel cap is checked on the header (Pillow
reads only the header, no pixels) before anything is decoded; a picture that is not a
JPEG, or that nvJPEG refuses, goes through Pillow (``ImageTransform.decode``) and its
failures keep their reason codes. torchvision is optional: where it does not import
(no torchvision, or the CPU-only torch of CI with a CUDA torchvision wheel),
:func:`available` is False and callers decode with Pillow.
"""

from __future__ import annotations

import io
import logging
import warnings
from functools import cache

import torch
import torch.nn.functional as F
from PIL import Image

from .preprocessing import ImageDecodeError, ImageTransform

log = logging.getLogger("emostream.model")

JPEG_MAGIC = b"\xff\xd8\xff"


@cache
def _torchvision_io():
    """``torchvision.io`` or None; imported once, only when a GPU path asks for it."""
    try:
        import torchvision.io as tio  # optional, and its import can raise
    except Exception as exc:  # noqa: BLE001 - any import failure means "not available"
        log.info("torchvision does not load (%s); JPEGs are decoded with Pillow", exc)
        return None
    return tio


def available(device: torch.device | str) -> bool:
    """True when pictures can be decoded on ``device`` with nvJPEG."""
    device = torch.device(device)
    return device.type == "cuda" and torch.cuda.is_available() and _torchvision_io() is not None


def resize_crop(image: torch.Tensor, resize: int, crop: int) -> torch.Tensor:
    """uint8 (3, H, W) on any device -> uint8 (3, crop, crop): shorter side to ``resize``
    (antialiased bilinear, like Pillow's BILINEAR), then the centre ``crop``."""
    _, h, w = image.shape
    if min(h, w) != resize:
        scale = resize / min(h, w)
        size = (max(resize, round(h * scale)), max(resize, round(w * scale)))
        x = image.unsqueeze(0).float()
        x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        image = x.squeeze(0).round_().clamp_(0, 255).to(torch.uint8)
        h, w = size
    top, left = (h - crop) // 2, (w - crop) // 2
    return image[:, top : top + crop, left : left + crop].contiguous()


class GpuJpegDecoder:
    """Decodes batches of image bytes to uint8 (3, crop, crop) tensors on ``device``."""

    def __init__(self, transform: ImageTransform, device: torch.device | str) -> None:
        self.transform = transform
        self.device = torch.device(device)
        if not available(self.device):
            raise RuntimeError(f"nvJPEG decoding is not available on {self.device}")
        self._io = _torchvision_io()

    def _check_header(self, data: bytes) -> None:
        """The size caps, from the header alone; raises ImageDecodeError."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                w, h = Image.open(io.BytesIO(data)).size
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageDecodeError("too_many_pixels", str(exc)) from exc
        except Exception as exc:  # noqa: BLE001 - any header failure: undecodable
            raise ImageDecodeError("undecodable", f"{type(exc).__name__}: {exc}") from exc
        self.transform.check_size(w, h)

    def _nvjpeg(self, blobs: list[bytes]) -> list[torch.Tensor]:
        tensors = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in blobs]
        return self._io.decode_jpeg(
            tensors,
            mode=self._io.ImageReadMode.RGB,
            device=self.device,
            apply_exif_orientation=True,
        )

    def decode_many(self, blobs: list[bytes]) -> list[torch.Tensor | ImageDecodeError]:
        """One result per input: a tensor on the device, or the reason it failed."""
        out: list[torch.Tensor | ImageDecodeError | None] = [None] * len(blobs)
        jpeg: list[int] = []
        for i, data in enumerate(blobs):
            if not data:
                out[i] = ImageDecodeError("empty")
                continue
            try:
                self._check_header(data)
            except ImageDecodeError as err:
                out[i] = err
                continue
            if data[:3] == JPEG_MAGIC:
                jpeg.append(i)
            else:
                out[i] = self._pillow(data)
        if jpeg:
            try:
                decoded = self._nvjpeg([blobs[i] for i in jpeg])
            except RuntimeError:
                # nvJPEG returns nothing when one picture of the batch fails: find it
                decoded = [self._one(blobs[i]) for i in jpeg]
            t = self.transform
            for i, img in zip(jpeg, decoded, strict=True):
                if isinstance(img, ImageDecodeError) or not img.is_cuda:
                    out[i] = img  # failed, or Pillow's fallback (already resized and cropped)
                else:
                    out[i] = resize_crop(img, t.resize, t.crop)
        return out  # type: ignore[return-value]

    def _one(self, data: bytes) -> torch.Tensor | ImageDecodeError:
        try:
            return self._nvjpeg([data])[0]
        except RuntimeError:
            return self._pillow(data)  # e.g. progressive or CMYK JPEGs nvJPEG declines

    def _pillow(self, data: bytes) -> torch.Tensor | ImageDecodeError:
        try:
            return self.transform.decode(data)
        except ImageDecodeError as err:
            return err
