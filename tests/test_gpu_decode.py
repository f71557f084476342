"""GPU JPEG decoding: same geometry as the Pillow path, and out of the way where it cannot run."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from emostream.model import gpu_decode
from emostream.model.gpu_decode import GpuJpegDecoder, resize_crop
from emostream.model.preprocessing import ImageDecodeError, ImageTransform


@pytest.fixture(scope="module")
def photo(data_dir) -> bytes:
    """A real picture, enlarged to 900x600 so that resizing has work to do."""
    from emostream.model.training.datasets import Dataset

    item = Dataset.load("mvsa-single", data_dir).split("test")[0]
    img = Image.open(item.image_path).convert("RGB").resize((900, 600), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=92)
    return buf.getvalue()


def test_resize_crop_matches_pillow(photo):
    full = torch.from_numpy(np.asarray(Image.open(io.BytesIO(photo)).convert("RGB")).copy())
    ours = resize_crop(full.permute(2, 0, 1), resize=256, crop=224)
    pillow = ImageTransform(draft=False).decode(photo)
    assert ours.shape == pillow.shape == (3, 224, 224)
    assert ours.dtype == torch.uint8
    diff = (ours.float() - pillow.float()).abs()
    assert diff.mean() < 1.5, diff.mean()  # antialiased bilinear on both sides
    assert diff.max() <= 40


def test_resize_crop_leaves_the_right_size_alone():
    img = torch.randint(0, 255, (3, 256, 300), dtype=torch.uint8)
    out = resize_crop(img, resize=256, crop=224)
    assert torch.equal(out, img[:, 16:240, 38:262])


def test_not_available_on_cpu():
    assert not gpu_decode.available("cpu")
    with pytest.raises(RuntimeError, match="not available"):
        GpuJpegDecoder(ImageTransform(), "cpu")


@pytest.mark.skipif(not gpu_decode.available("cuda"), reason="needs CUDA and torchvision")
def test_decodes_on_the_gpu_with_the_cpu_guards(photo):  # pragma: no cover - GPU machines
    png = io.BytesIO()
    Image.open(io.BytesIO(photo)).save(png, "PNG")
    transform = ImageTransform(max_pixels=800 * 600)
    dec = GpuJpegDecoder(ImageTransform(), "cuda")
    small = GpuJpegDecoder(transform, "cuda")
    out = dec.decode_many([photo, png.getvalue(), b"not a picture", b"", photo[:200]])
    assert out[0].is_cuda and out[0].shape == (3, 224, 224)
    pillow = ImageTransform(draft=False).decode(photo).float()
    assert (out[0].cpu().float() - pillow).abs().mean() < 3  # nvJPEG's IDCT differs a little
    assert out[1].shape == (3, 224, 224)  # PNG: through Pillow
    assert isinstance(out[2], ImageDecodeError) and out[2].reason == "undecodable"
    assert isinstance(out[3], ImageDecodeError) and out[3].reason == "empty"
    assert isinstance(out[4], ImageDecodeError)
    [bomb] = small.decode_many([photo])
    assert isinstance(bomb, ImageDecodeError) and bomb.reason == "too_many_pixels"
