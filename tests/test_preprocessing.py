"""Pillow decoding: formats, transparency, draft mode, and every kind of bad bytes."""

import io

import pytest
import torch
from helpers import fuzz_examples, png_header
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from emostream.model.preprocessing import ImageDecodeError, ImageTransform

T = ImageTransform()


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def photo(w=640, h=480) -> Image.Image:
    x = torch.linspace(0, 255, w).to(torch.uint8).repeat(h, 1)
    y = torch.linspace(0, 255, h).to(torch.uint8).unsqueeze(1).repeat(1, w)
    arr = torch.stack([x, y, 255 - x], dim=-1).numpy()
    return Image.fromarray(arr, "RGB")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP", "BMP"])
def test_formats_decode_to_a_crop(fmt):
    out = T.decode(encode(photo(), fmt))
    assert out.shape == (3, 224, 224) and out.dtype == torch.uint8


def test_small_images_are_enlarged_to_the_crop():
    assert T.decode(encode(photo(40, 30), "PNG")).shape == (3, 224, 224)


def test_transparency_is_composited_on_white():
    img = Image.new("RGBA", (300, 300), (255, 0, 0, 0))
    out = T.decode(encode(img, "PNG"))
    assert out.min().item() == 255  # fully transparent red -> white


def test_draft_mode_matches_full_decode():
    data = encode(photo(2000, 1500), "JPEG", quality=90)
    fast = T.decode(data).float()
    full = ImageTransform(draft=False).decode(data).float()
    assert (fast - full).abs().mean() < 4.0


def test_exif_orientation_is_applied():
    img = photo(400, 200)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees
    rotated = T.decode(encode(img, "JPEG", exif=exif.tobytes()))
    plain = T.decode(encode(img.transpose(Image.Transpose.ROTATE_270), "JPEG"))
    assert (rotated.float() - plain.float()).abs().mean() < 6.0


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty"),
        (b"<html>not found</html>", "undecodable"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 50, "undecodable"),
    ],
)
def test_bad_bytes_raise_with_a_reason(data, reason):
    with pytest.raises(ImageDecodeError) as err:
        T.decode(data)
    assert err.value.reason == reason


def test_truncated_jpeg_is_refused():
    data = encode(photo(), "JPEG")
    with pytest.raises(ImageDecodeError) as err:
        T.decode(data[: len(data) // 2])
    assert err.value.reason == "undecodable"


def test_decompression_bomb_is_refused_before_decoding():
    bomb = encode(Image.new("1", (12000, 12000)), "PNG")  # 144 Mpx in a few kB
    assert len(bomb) < 200_000
    with pytest.raises(ImageDecodeError) as err:
        T.decode(bomb)
    assert err.value.reason == "too_many_pixels"
    with pytest.raises(ImageDecodeError):
        ImageTransform(max_pixels=100 * 100).decode(encode(photo(200, 200), "PNG"))


def test_normalise_gives_channels_last_in_range():
    batch = torch.stack([T.decode(encode(photo(), "JPEG"))] * 2)
    x = T.normalise(batch)
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert -1.0 <= x.min() and x.max() <= 1.0


@pytest.mark.parametrize(
    "w, h, reason",
    [
        (1, 39_000_000, "too_many_pixels"),  # under the pixel cap, a side far over its cap
        (39_000_000, 1, "too_many_pixels"),
        (30_000, 10, "too_many_pixels"),
        (1, 4000, "bad_dimensions"),  # would be resized to 256 x 1,024,000
        (4000, 1, "bad_dimensions"),
        (100, 2001, "bad_dimensions"),
    ],
)
def test_sides_and_aspect_are_checked_from_the_header(w, h, reason):
    with pytest.raises(ImageDecodeError) as err:
        T.decode(png_header(w, h))
    assert err.value.reason == reason


def test_a_strip_is_refused_and_an_elongated_picture_is_not():
    with pytest.raises(ImageDecodeError) as err:
        T.decode(encode(Image.new("RGB", (1, 4000)), "PNG"))
    assert err.value.reason == "bad_dimensions"
    assert T.decode(encode(photo(100, 2000), "PNG")).shape == (3, 224, 224)  # aspect 20


SMALL = {fmt: encode(photo(64, 48), fmt) for fmt in ("PNG", "JPEG", "GIF", "WEBP")}


@pytest.mark.fuzz
@settings(max_examples=fuzz_examples(400), deadline=None)
@given(
    st.sampled_from(sorted(SMALL)),
    st.lists(st.tuples(st.integers(0, 63), st.integers(0, 255)), min_size=1, max_size=8),
    st.integers(8, 4096),
)
def test_mutated_headers_decode_or_are_refused_with_a_reason(fmt, edits, keep):
    """Random bytes written into the first 64 bytes (the header) of a small picture of each
    format, cut at a random length: a picture or ImageDecodeError, nothing else."""
    data = bytearray(SMALL[fmt][:keep])
    for pos, byte in edits:
        if pos < len(data):
            data[pos] = byte
    try:
        out = T.decode(bytes(data))
    except ImageDecodeError as err:
        assert err.reason in {"empty", "undecodable", "too_many_pixels", "bad_dimensions"}
    else:
        assert out.shape == (3, 224, 224) and out.dtype == torch.uint8
