"""Emotion of a post with text and picture: the weighted mean of the answers to each alone
(FusionConfig.modality_pool), its text weight fitted on made-up pairs (pairs.py)."""

import dataclasses

import pytest
import torch

from emostream.model.checkpoint import load_checkpoint, save_checkpoint
from emostream.model.datasets import Item
from emostream.model.feature_cache import Features
from emostream.model.fusion import FusionConfig, build
from emostream.model.labels import EMOTIONS
from emostream.model.pairs import Pairs, _matched, answers, fit_text_weight

HEADS = {"emotion": len(EMOTIONS), "sentiment": 3}


def make_model(pool: dict | None = None, seed: int = 0):
    torch.manual_seed(seed)
    config = FusionConfig(kind="commonspace", heads=HEADS, modality_pool=pool or {})
    return build(config).eval()


def alone(model, text, image, mask, keep: int):
    m = torch.zeros_like(mask)
    m[:, keep] = mask[:, keep]
    return model(text, image, m).logits


@pytest.mark.parametrize("pool", [{"nope": 0.7}, {"emotion": 1.5}, {"emotion": -0.1}])
def test_a_pool_needs_a_head_and_a_weight_in_0_1(pool):
    with pytest.raises(ValueError, match="modality_pool"):
        FusionConfig(kind="commonspace", heads=HEADS, modality_pool=pool)


def test_both_modalities_get_the_weighted_mean_of_each_alone(make_batch):
    text, image, mask = make_batch("bbtib")
    model = make_model({"emotion": 0.7})
    with torch.inference_mode():
        out = model(text, image, mask).logits
        p_text = alone(model, text, image, mask, 0)["emotion"].softmax(-1)
        p_image = alone(model, text, image, mask, 1)["emotion"].softmax(-1)
    want = 0.7 * p_text + 0.3 * p_image
    both = mask.all(dim=1)
    torch.testing.assert_close(out["emotion"].exp()[both], want[both], atol=1e-6, rtol=0)


def test_one_modality_and_other_heads_are_left_as_they_were(make_batch):
    text, image, mask = make_batch("bbtib")
    plain, pooled = make_model(), make_model({"emotion": 0.7})
    pooled.load_state_dict(plain.state_dict())
    with torch.inference_mode():
        a, b = plain(text, image, mask).logits, pooled(text, image, mask).logits
    one = ~mask.all(dim=1)
    torch.testing.assert_close(a["emotion"][one], b["emotion"][one])
    torch.testing.assert_close(a["sentiment"], b["sentiment"])
    assert not torch.allclose(a["emotion"][~one], b["emotion"][~one])


def test_text_weight_one_answers_as_the_text_alone(make_batch):
    text, image, mask = make_batch("bb")
    model = make_model({"emotion": 1.0})
    with torch.inference_mode():
        out = model(text, image, mask).logits["emotion"].softmax(-1)
        p_text = alone(model, text, image, mask, 0)["emotion"].softmax(-1)
    torch.testing.assert_close(out, p_text, atol=1e-6, rtol=0)


def test_the_pool_survives_the_checkpoint(tmp_path):
    model = make_model({"emotion": 0.65})
    back, _ = load_checkpoint(save_checkpoint(model, tmp_path / "m.safetensors"))
    assert back.config.modality_pool == {"emotion": 0.65}


def test_the_fitted_weight_follows_the_modality_that_carries_the_label(make_batch):
    text, image, _ = make_batch("b" * 400, seed=3)
    model = make_model()
    probe = Pairs(text, image, torch.zeros(400, dtype=torch.long))
    got = answers(model, probe)
    by_text = {"x": dataclasses.replace(probe, truth=got["text"].argmax(-1))}
    by_image = {"x": dataclasses.replace(probe, truth=got["image"].argmax(-1))}
    assert fit_text_weight(model, by_text)[0] == 1.0
    w, table = fit_text_weight(model, by_image)
    assert w == 0.5 and table["0.5"] > table["1.0"]


def test_matched_pairs_join_a_picture_to_a_comment_of_its_one_label():
    import random

    def item(i, dataset, label, **extra):
        return Item(dataset, str(i), "test", label, "t", None, extra)

    comments = [
        item(0, "goemotions", "joy", ekman_labels="joy"),
        item(1, "goemotions", "fear", ekman_labels="fear|joy"),  # two labels: never used
        item(2, "goemotions", "fear", ekman_labels="fear"),
    ]
    pictures = [item(i, "emotion6", lab) for i, lab in enumerate(["fear", "joy", "fear"])]
    c = Features(["c"] * 3, torch.arange(3.0)[:, None], torch.zeros(3, 1), torch.ones(3, 2) > 0)
    p = Features(["p"] * 3, torch.zeros(3, 1), torch.arange(3.0)[:, None], torch.ones(3, 2) > 0)
    pairs = _matched((comments, c), (pictures, p), random.Random(0))
    assert pairs.truth.tolist() == [EMOTIONS.index(e) for e in ("fear", "joy", "fear")]
    assert pairs.text[:, 0].tolist() == [2.0, 0.0, 2.0]
    assert pairs.image[:, 0].tolist() == [0.0, 1.0, 2.0]
