"""Training: it learns, it is reproducible, modality dropout keeps one modality."""

import torch

from emostream.model.fusion import FusionConfig, build
from emostream.model.training.feature_cache import Features
from emostream.model.training.loop import (
    TrainConfig,
    TrainingSet,
    drop_modalities,
    predict,
    seed_everything,
    train,
)


def toy(n=400, seed=0):
    """Class = sign of a direction hidden in the text; the image carries it too (noisier)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    text = torch.randn(n, 16, generator=g) + (y[:, None] * 2 - 1) * 1.5
    image = torch.randn(n, 24, generator=g) + (y[:, None] * 2 - 1) * 0.8
    mask = torch.ones(n, 2, dtype=torch.bool)
    return Features([str(i) for i in range(n)], text, image, mask), y.tolist()


def accuracy(model, f, y):
    return (predict(model, f)["label"].argmax(-1) == torch.tensor(y)).float().mean().item()


def fit(kind, cfg):
    f, y = toy()
    vf, vy = toy(seed=1)
    seed_everything(cfg.seed)
    model = build(FusionConfig(kind=kind, text_dim=16, image_dim=24, heads={"label": 2}, hidden=16))
    ts = TrainingSet.from_labels(f, y, 2)
    model, hist = train(model, ts, lambda m: accuracy(m, vf, vy), cfg, progress=False)
    return model, hist, vf, vy


def test_commonspace_learns_a_separable_problem():
    model, hist, vf, vy = fit("commonspace", TrainConfig(epochs=15, batch_size=32))
    assert accuracy(model, vf, vy) > 0.9
    assert hist[-1]["loss"] < hist[0]["loss"]


def test_same_seed_same_model():
    cfg = TrainConfig(epochs=3, batch_size=32, modality_dropout=0.3)
    a, _, vf, vy = fit("early", cfg)
    b, _, _, _ = fit("early", cfg)
    for (k, v), (_, w) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(v, w), k


def test_modality_dropout_never_drops_both():
    mask = torch.tensor([[True, True]] * 1000 + [[True, False]] * 10 + [[False, True]] * 10)
    out = drop_modalities(mask, 0.5, torch.Generator().manual_seed(0))
    assert out.any(dim=1).all()
    assert torch.equal(out[1000:], mask[1000:])  # single-modality posts untouched
    dropped = (~out[:1000]).any(dim=1).float().mean().item()
    assert 0.4 < dropped < 0.6
    assert torch.equal(drop_modalities(mask, 0.0, torch.Generator()), mask)
