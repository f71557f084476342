"""Every paper model honours the modality mask: absent features are never read."""

import pytest
import torch

from emostream.model.fusion import KINDS, FusionConfig, build

HEADS = {"emotion": 6, "sentiment": 3}


def model_of(kind: str, pool: str = "max", **options):
    torch.manual_seed(0)
    return build(FusionConfig(kind=kind, heads=HEADS, pool=pool, **options)).eval()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("pattern", ["b", "t", "i", "btib"])
def test_outputs_are_finite_distributions(kind, pattern, make_batch):
    text, image, mask = make_batch(pattern)
    out = model_of(kind)(text, image, mask)
    for head, n in HEADS.items():
        p = out.logits[head].softmax(-1)
        assert p.shape == (len(pattern), n)
        assert torch.isfinite(p).all()
        torch.testing.assert_close(p.sum(-1), torch.ones(len(pattern)))


PAPER_HEAD = {"project_text": False, "normalise": False}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("pool", ["max", "mean"])
@pytest.mark.parametrize("options", [{}, PAPER_HEAD], ids=["ours", "paper-head"])
def test_absent_modality_is_never_read(kind, pool, options, make_batch):
    text, image, mask = make_batch("ttii")
    model = model_of(kind, pool, **options)
    before = model(text, image, mask).logits
    # Scribble over exactly the features the mask says are absent.
    text2, image2 = text.clone(), image.clone()
    text2[~mask[:, 0]] = 1e4
    image2[~mask[:, 1]] = -1e4
    after = model(text2, image2, mask).logits
    for head in HEADS:
        torch.testing.assert_close(before[head], after[head])


@pytest.mark.parametrize("kind", ["early", "late", "joint", "commonspace"])
def test_fusion_uses_both_when_present(kind, make_batch):
    text, image, mask = make_batch("bb")
    model = model_of(kind)
    a = model(text, image, mask).logits["emotion"]
    b = model(text, image * 3.0 + 1.0, mask).logits["emotion"]
    c = model(text * -1.0, image, mask).logits["emotion"]
    assert not torch.allclose(a, b) and not torch.allclose(a, c)


def test_late_fusion_with_one_modality_is_that_classifier(make_batch):
    text, image, mask = make_batch("t")
    model = model_of("late")
    fused = model(text, image, mask).logits["emotion"].softmax(-1)
    alone = model.text_classifier(text)["emotion"].softmax(-1)
    torch.testing.assert_close(fused, alone, atol=1e-6, rtol=1e-5)


def test_late_fusion_with_both_is_the_mean(make_batch):
    text, image, mask = make_batch("b")
    model = model_of("late")
    fused = model(text, image, mask).logits["emotion"].softmax(-1)
    mean = (
        model.text_classifier(text)["emotion"].softmax(-1)
        + model.image_classifier(image)["emotion"].softmax(-1)
    ) / 2
    torch.testing.assert_close(fused, mean, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("pool", ["max", "mean"])
def test_joint_pooling_of_one_vector_is_that_vector(pool, make_batch):
    text, image, mask = make_batch("ti")
    model = model_of("joint", pool)
    t, v = model.embed(text, image, mask)
    out = model(text, image, mask).logits["emotion"]
    expect = model.classifier(torch.stack([t[0], v[1]]))["emotion"]
    torch.testing.assert_close(out, expect)


def test_paper_head_keeps_the_text_vector_as_is(make_batch):
    text, image, mask = make_batch("b")
    t, _ = model_of("joint", **PAPER_HEAD).embed(text, image, mask)
    torch.testing.assert_close(t, text)


def test_joint_max_pool_is_elementwise_max(make_batch):
    text, image, mask = make_batch("b")
    model = model_of("joint", "max")
    t, v = model.embed(text, image, mask)
    out = model(text, image, mask).logits["emotion"]
    torch.testing.assert_close(out, model.classifier(torch.maximum(t, v))["emotion"])


def test_unimodal_training_terms_cover_only_rows_with_the_modality(make_batch):
    text, image, mask = make_batch("btib")
    ((logits, rows),) = model_of("text")(text, image, mask).train_terms
    assert rows.tolist() == [True, True, False, True]
    ((logits, rows),) = model_of("image")(text, image, mask).train_terms
    assert rows.tolist() == [True, False, True, True]


def test_unknown_kind_and_pool_are_refused():
    with pytest.raises(ValueError, match="unknown model kind"):
        FusionConfig(kind="transformer")
    with pytest.raises(ValueError, match="pool"):
        FusionConfig(kind="joint", pool="sum")
