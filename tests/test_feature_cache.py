"""The feature cache encodes each item once per encoder version."""

import torch

from emostream.model.training.datasets import Dataset
from emostream.model.training.feature_cache import FeatureCache


def test_second_read_encodes_nothing_and_new_items_only_themselves(encoder, data_dir, tmp_path):
    items = Dataset.load("twitter-ii", data_dir).split("val")
    cache = FeatureCache(encoder, tmp_path)
    first = cache.features(items[:6], progress=False)
    assert first.mask.all()  # twitter-ii posts here have text and image

    calls = []
    real_texts, real_images = encoder.encode_texts, encoder.encode_images

    def count_texts(texts, *a):
        calls.append(("text", len(texts)))
        return real_texts(texts, *a)

    def count_images(images, *a):
        calls.append(("image", len(images)))
        return real_images(images, *a)

    encoder.encode_texts, encoder.encode_images = count_texts, count_images
    try:
        again = FeatureCache(encoder, tmp_path).features(items[:6], progress=False)
        assert calls == []
        torch.testing.assert_close(again.text, first.text)
        torch.testing.assert_close(again.image, first.image)
        more = FeatureCache(encoder, tmp_path).features(items[:8], progress=False)
        assert calls == [("text", 2), ("image", 2)]
        torch.testing.assert_close(more.image[:6], first.image)
    finally:
        encoder.encode_texts, encoder.encode_images = real_texts, real_images
    assert [k.split("/")[0] for k in more.keys] == ["twitter-ii"] * 8


def test_cache_is_keyed_by_encoder_version(encoder, tmp_path):
    cache = FeatureCache(encoder, tmp_path)
    assert encoder.version in str(cache.dir)
