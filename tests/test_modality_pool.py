"""A post with text and picture: the weighted mean of the answers to each alone
(FusionConfig.modality_pool), its text weight fitted on made-up pairs (pairs.py); for
sentiment, the fused answer kept as far as the text reads like a tweet (fused_for)."""

import dataclasses

import pytest
import torch

from emostream.model.checkpoint import load_checkpoint, save_checkpoint
from emostream.model.experts import expert_spec
from emostream.model.fusion import FusionConfig, build, reconfigured
from emostream.model.training.datasets import Item
from emostream.model.training.feature_cache import Features
from emostream.model.training.labels import EMOTIONS
from emostream.model.training.pairs import (
    Pairs,
    _matched,
    answers,
    fit_text_weight,
    pooled_score,
    tweets_and_pairs_score,
)

HEADS = {"emotion": len(EMOTIONS), "sentiment": 3}


def make_model(pool: dict | None = None, seed: int = 0, **config):
    torch.manual_seed(seed)
    config = FusionConfig(kind="commonspace", heads=HEADS, modality_pool=pool or {}, **config)
    return build(config).eval()


# a gate over two datasets, "tweets" and "texts", with no experts: served heads as trained
GATED = {"experts": expert_spec("domain", ["tweets", "texts"], {"sentiment": []})}
KEEP = {"sentiment": ["tweets"]}


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
    assert fit_text_weight(pooled_score(model, by_text))[0] == 1.0
    w, table = fit_text_weight(pooled_score(model, by_image))
    assert w == 0.5 and table["0.5"] > table["1.0"]


@pytest.mark.parametrize(
    "pool, keep",
    [({"emotion": 0.7}, KEEP), ({"sentiment": 0.7}, {"sentiment": ["nope"]})],
)
def test_fused_for_needs_a_pooled_head_and_datasets_of_the_gate(pool, keep):
    with pytest.raises(ValueError, match="fused_for"):
        FusionConfig(kind="commonspace", heads=HEADS, modality_pool=pool, fused_for=keep, **GATED)


def test_fused_for_keeps_the_fused_answer_by_the_gate_on_the_text_alone(make_batch):
    text, image, mask = make_batch("bbbtib", seed=4)
    fused = make_model(**GATED)
    kept = make_model({"sentiment": 0.7}, fused_for=KEEP, **GATED)
    kept.load_state_dict(fused.state_dict())
    with torch.inference_mode():
        out = kept(text, image, mask).logits["sentiment"].exp()
        p_both = fused(text, image, mask).logits["sentiment"].softmax(-1)
        by_text = alone(fused, text, image, mask, 0)
        p_image = alone(fused, text, image, mask, 1)["sentiment"].softmax(-1)
    g = by_text["domain"].softmax(-1)[:, :1]  # the gate's weight on "tweets", text alone
    assert 0.05 < float(g.min()) and float(g.max()) < 0.95  # the test sees both parts
    p_text = by_text["sentiment"].softmax(-1)
    want = g * p_both + (1 - g) * (0.7 * p_text + 0.3 * p_image)
    both = mask.all(dim=1)
    torch.testing.assert_close(out[both], want[both], atol=1e-6, rtol=0)
    torch.testing.assert_close(out[~both], p_both[~both], atol=1e-6, rtol=0)


def test_fused_for_survives_the_checkpoint(tmp_path):
    model = make_model({"sentiment": 0.6}, fused_for=KEEP, **GATED)
    back, _ = load_checkpoint(save_checkpoint(model, tmp_path / "m.safetensors"))
    assert back.config.fused_for == KEEP and back.config.modality_pool == {"sentiment": 0.6}


def test_tweets_and_made_pairs_weigh_half_each(make_batch):
    """The score is the mean of the tweets' accuracy and the made pairs' mean accuracy,
    however many made sets there are."""
    text, image, _ = make_batch("b" * 300, seed=5)
    model = make_model({"sentiment": 1.0}, fused_for=KEEP, **GATED)
    served = reconfigured(model, modality_pool={"sentiment": 0.8})
    probe = Pairs(text, image, torch.zeros(300, dtype=torch.long))
    made = dataclasses.replace(probe, truth=answers(served, probe, "sentiment")["both"].argmax(-1))
    tweets = probe  # every truth "negative"
    right = answers(served, tweets, "sentiment")["both"].argmax(-1) == 0
    sets = {"mvsa-single": tweets, "photo+a": made, "photo+b": made}
    score = tweets_and_pairs_score(model, sets)
    assert 0.0 < float(right.float().mean()) < 1.0
    assert score(0.8) == pytest.approx((float(right.float().mean()) + 1.0) / 2)


def test_a_restricted_pair_set_predicts_among_its_classes():
    probs = torch.tensor([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]])
    pairs = Pairs(torch.zeros(2, 1), torch.zeros(2, 1), torch.tensor([2, 0]), (0, 2))
    assert pairs.predicted(probs).tolist() == [2, 0]


def test_matched_pairs_join_a_picture_to_a_comment_of_its_one_label():
    import random

    def item(i, dataset, label, **extra):
        return Item(dataset, str(i), "test", label, "t", None, extra)

    comments = [
        item(0, "goemotions", "joy", labels="joy"),
        item(1, "goemotions", "fear", labels="fear|joy"),  # two labels: never used
        item(2, "goemotions", "fear", labels="nervousness"),
    ]
    pictures = [item(i, "emotion6", lab) for i, lab in enumerate(["fear", "joy", "fear"])]
    c = Features(["c"] * 3, torch.arange(3.0)[:, None], torch.zeros(3, 1), torch.ones(3, 2) > 0)
    p = Features(["p"] * 3, torch.zeros(3, 1), torch.arange(3.0)[:, None], torch.ones(3, 2) > 0)
    pairs = _matched((comments, c), (pictures, p), random.Random(0))
    assert pairs.truth.tolist() == [EMOTIONS.index(e) for e in ("fear", "joy", "fear")]
    assert pairs.text[:, 0].tolist() == [2.0, 0.0, 2.0]
    assert pairs.image[:, 0].tolist() == [0.0, 1.0, 2.0]
