"""The batch API over the real frozen encoders."""

from pathlib import Path

import pytest
import torch

from emostream.model.encoder import IMAGE, TEXT, EmptyPostError, PostInput

SAMPLE = Path(__file__).resolve().parent.parent / "model" / "sample" / "images"


@pytest.fixture(scope="module")
def jpeg():
    return (SAMPLE / "temple.jpg").read_bytes()


def test_mixed_batch_gives_features_and_mask(encoder, jpeg):
    posts = [
        PostInput("a lovely day", jpeg),
        PostInput("text only", None),
        PostInput(None, jpeg),
        PostInput("broken picture", b"\x89PNG\r\n\x1a\n garbage"),
        PostInput("   ", jpeg),  # blank text counts as no text
    ]
    b = encoder.encode(posts)
    assert b.text.shape == (5, 384) and b.image.shape == (5, 1280)
    assert b.mask[:, TEXT].tolist() == [True, True, False, True, False]
    assert b.mask[:, IMAGE].tolist() == [True, False, True, False, True]
    assert b.image_status == ["ok", "absent", "ok", "error:undecodable", "ok"]
    assert (b.text[~b.mask[:, TEXT]] == 0).all() and (b.image[~b.mask[:, IMAGE]] == 0).all()
    torch.testing.assert_close(b.text[b.mask[:, TEXT]].norm(dim=1), torch.ones(3))
    # same picture -> same features, whatever the text beside it
    torch.testing.assert_close(b.image[0], b.image[2])


def test_features_do_not_depend_on_the_batch(encoder, jpeg):
    alone = encoder.encode([PostInput("hello there", jpeg)])
    together = encoder.encode([PostInput("other", None), PostInput("hello there", jpeg)])
    torch.testing.assert_close(alone.text[0], together.text[1], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(alone.image[0], together.image[1], atol=1e-4, rtol=1e-3)


def test_text_features_carry_meaning(encoder):
    t = encoder.encode_texts(["I am so happy today", "what a joyful day", "the invoice is due"])
    sim = t @ t.T
    assert sim[0, 1] > sim[0, 2] + 0.2


def test_post_with_neither_is_a_clear_error(encoder):
    with pytest.raises(EmptyPostError, match="neither text nor a usable image"):
        encoder.encode([PostInput("fine", None), PostInput(None, b"not an image")])
    b = encoder.encode([PostInput(None, None)], strict=False)
    assert not b.mask.any()


def test_pre_decoded_tensors_are_accepted(encoder, jpeg):
    decoded = encoder.decode(jpeg)
    a = encoder.encode([PostInput(None, jpeg)]).image
    b = encoder.encode([PostInput(None, decoded)]).image
    torch.testing.assert_close(a, b)


def test_very_long_text_is_cut_not_fatal(encoder):
    b = encoder.encode([PostInput("word " * 200_000, None)])
    assert b.mask[0, TEXT] and torch.isfinite(b.text).all()
