"""Served heads mixed from the per-dataset heads, gated by the domain head (experts.py)."""

import pytest
import torch

from emostream.model.checkpoint import load_checkpoint, save_checkpoint
from emostream.model.experts import expert_spec, mix
from emostream.model.fusion import FusionConfig, build
from emostream.model.training.datasets import DATASETS, Dataset
from emostream.model.training.labels import EMOTIONS, SENTIMENTS
from emostream.model.training.tasks import experts_for, heads_for

# served head "emotion" (4 classes); expert "a" knows served classes 0 and 2 (its two
# labels), expert "b" knows 1 and 3, its first two labels both meaning class 1.
SPEC = expert_spec("gate", ["x", "y", "z"], {"emotion": [("a", 0, [0, 2]), ("b", 1, [1, 1, 3])]})


def logits(gate: list[float], seed: int = 0, n: int = 5) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "emotion": torch.randn(n, 4, generator=g),
        "a": torch.randn(n, 2, generator=g),
        "b": torch.randn(n, 3, generator=g),
        "gate": torch.tensor(gate).log().expand(n, -1),
    }


def test_mixture_is_a_distribution():
    out = mix(logits([0.3, 0.5, 0.2], seed=3), SPEC)["emotion"].exp()
    torch.testing.assert_close(out.sum(-1), torch.ones(5))
    assert (out > 0).all()


def test_an_expert_decides_among_its_classes_and_leaves_the_others():
    x = logits([1.0, 1e-12, 1e-12])
    served, own = x["emotion"].softmax(-1), x["a"].softmax(-1)
    out = mix(x, SPEC)["emotion"].exp()
    # classes outside the expert's space keep the served head's probability
    torch.testing.assert_close(out[:, [1, 3]], served[:, [1, 3]], atol=1e-6, rtol=0)
    # inside it, the served mass is spread as the expert says
    mass = served[:, [0, 2]].sum(-1, keepdim=True)
    torch.testing.assert_close(out[:, [0, 2]], mass * own, atol=1e-6, rtol=0)


def test_a_weight_below_one_pools_the_expert_with_the_served_head():
    spec = expert_spec("gate", ["x", "y", "z"], {"emotion": [("a", 0, [0, 2])]}, {"emotion": 0.5})
    x = logits([1.0, 1e-12, 1e-12], seed=5)
    served, own = x["emotion"].softmax(-1), x["a"].softmax(-1)
    out = mix(x, spec)["emotion"].exp()
    pooled = (served[:, [0, 2]] * own).sqrt()
    want = served[:, [0, 2]].sum(-1, keepdim=True) * pooled / pooled.sum(-1, keepdim=True)
    torch.testing.assert_close(out[:, [0, 2]], want, atol=1e-6, rtol=0)
    torch.testing.assert_close(out[:, [1, 3]], served[:, [1, 3]], atol=1e-6, rtol=0)


def test_labels_that_share_a_served_class_add_up():
    x = logits([1e-12, 1.0, 1e-12], seed=1)
    served, own = x["emotion"].softmax(-1), x["b"].softmax(-1)
    out = mix(x, SPEC)["emotion"].exp()
    mass = served[:, [1, 3]].sum(-1)
    torch.testing.assert_close(out[:, 1], mass * (own[:, 0] + own[:, 1]), atol=1e-6, rtol=0)
    torch.testing.assert_close(out[:, 3], mass * own[:, 2], atol=1e-6, rtol=0)
    torch.testing.assert_close(out[:, [0, 2]], served[:, [0, 2]], atol=1e-6, rtol=0)


def test_a_post_like_no_expert_gets_the_served_head():
    x = logits([1e-12, 1e-12, 1.0], seed=2)
    out = mix(x, SPEC)
    torch.testing.assert_close(out["emotion"].exp(), x["emotion"].softmax(-1))
    assert out["a"] is x["a"]  # only served heads are mixed


def test_every_dataset_is_an_expert_for_the_head_its_labels_speak_to(data_dir):
    spec = experts_for(DATASETS, data_dir)
    by_head = {h: {e["head"]: e for e in group} for h, group in spec["heads"].items()}
    assert set(by_head["emotion"]) == {
        "ds_reddit_emotions",
        "ds_flickr_fi_text",
        "ds_goemotions",
        "ds_emotion6",
    }
    assert set(by_head["sentiment"]) == {"ds_mvsa_single", "ds_twitter_ii"}
    flickr = by_head["emotion"]["ds_flickr_fi_text"]
    labels = Dataset.load("flickr-fi-text", data_dir).labels
    assert flickr["gate"] == DATASETS.index("flickr-fi-text")
    assert EMOTIONS[flickr["classes"][labels.index("awe")]] == "surprise"
    assert EMOTIONS[flickr["classes"][labels.index("amusement")]] == "joy"
    twitter = by_head["sentiment"]["ds_twitter_ii"]
    assert [SENTIMENTS[c] for c in twitter["classes"]] == ["negative", "positive"]


def test_the_gate_learns_each_row_s_dataset_with_datasets_weighing_alike(make_batch):
    from emostream.model.training.feature_cache import Features
    from emostream.model.training.gate import gate_set

    parts = [Features([], *make_batch("b" * n, seed=n)) for n in (2, 6, 4)]
    ts = gate_set(parts, "gate")
    assert ts.has_target["gate"].all() and (ts.rank_label == -1).all()
    assert ts.targets["gate"].argmax(-1).tolist() == [0] * 2 + [1] * 6 + [2] * 4
    per_dataset = [float(ts.weight[a:b].sum()) for a, b in ((0, 2), (2, 8), (8, 12))]
    assert per_dataset == pytest.approx([4.0, 4.0, 4.0])


def test_fitting_the_gate_leaves_every_other_weight_as_it_was(make_batch):
    from emostream.model.training.feature_cache import Features
    from emostream.model.training.gate import fit_gate
    from emostream.model.training.loop import TrainConfig

    torch.manual_seed(0)
    heads = {"emotion": 4, "a": 2, "b": 3}
    model = build(FusionConfig(kind="commonspace", heads=heads, hidden=16))
    parts = [Features([], *make_batch("bt" * 8, seed=s)) for s in range(3)]
    cfg = TrainConfig(epochs=3, lr=1e-2, aux_weight=0.0, modality_dropout=0.5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    gated, history = fit_gate(model, SPEC, parts, lambda m: 0.0, cfg, desc="t")
    assert gated.config.experts == SPEC and len(history) == 3
    assert history[-1]["loss"] < history[0]["loss"]
    state = gated.state_dict()
    assert all(torch.equal(state[k], v) for k, v in before.items())  # all but the gate
    assert {k.split(".")[0] for k in state if k not in before} == {"gate"}
    assert all(p.requires_grad for p in gated.parameters())


def test_a_mixed_model_survives_its_checkpoint(tmp_path, make_batch, data_dir):
    torch.manual_seed(0)
    config = FusionConfig(
        kind="commonspace",
        heads=heads_for(DATASETS, data_dir),
        hidden=32,
        experts=experts_for(DATASETS, data_dir),
    )
    model = build(config).eval()
    loaded, _ = load_checkpoint(save_checkpoint(model, tmp_path / "m.safetensors"))
    assert loaded.config == config
    text, image, mask = make_batch("btib")
    a, b = model(text, image, mask).logits, loaded(text, image, mask).logits
    for head in ("emotion", "sentiment"):
        torch.testing.assert_close(a[head].exp(), b[head].exp(), atol=2e-3, rtol=0)
        torch.testing.assert_close(b[head].exp().sum(-1), torch.ones(4))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_mixture_in_half_precision_stays_finite(dtype):
    x = {k: (v * 30).to(dtype) for k, v in logits([0.2, 0.7, 0.1], seed=4).items()}
    out = mix(x, SPEC)["emotion"]
    assert out.dtype == dtype and torch.isfinite(out).all()


def test_training_the_served_model_fits_a_gate_that_tells_the_datasets_apart(
    feature_cache, data_dir
):
    from emostream.model.training.loop import TrainConfig
    from emostream.model.training.served_training import _load, train_served

    datasets = ("reddit-emotions", "twitter-ii")
    cfg = TrainConfig(epochs=2, lr=1e-3, modality_dropout=0.3)
    model, info = train_served(feature_cache, data_dir, datasets, cfg, hidden=32)
    assert model.config.experts["domains"] == list(datasets)
    assert info["gate"]["epochs_run"] >= 1
    val = _load(datasets, data_dir, feature_cache, "val")
    for d, (_, feats) in enumerate(val.values()):
        with torch.no_grad():
            out = model(feats.text, feats.image, feats.mask)
        gate = out.train_terms[0][0]["domain"].argmax(-1)
        assert (gate == d).float().mean() > 0.9  # text-only posts vs tweets with pictures
        for head in ("emotion", "sentiment"):
            torch.testing.assert_close(out.logits[head].exp().sum(-1), torch.ones(len(gate)))


def test_a_mixture_first_made_under_inference_mode_still_trains():
    x = logits([0.6, 0.3, 0.1], seed=6)
    with torch.inference_mode():
        mix(x, SPEC)  # the experts' class maps are made here first
    own = x["a"].clone().requires_grad_(True)
    mix(x | {"a": own}, SPEC)["emotion"].sum().backward()
    assert own.grad is not None
