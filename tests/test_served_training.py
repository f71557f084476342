"""The shipped model: card honest, base + delta loading, calibration, beats the majority."""

import hashlib

import pytest
import torch

from emostream.model.backbones import DELTAS_DIR, IMAGE_BACKBONES, TEXT_BACKBONES
from emostream.model.checkpoint import load_checkpoint
from emostream.model.encoder import Encoder
from emostream.model.training.datasets import DATASETS, Dataset
from emostream.model.training.feature_cache import FeatureCache
from emostream.model.training.labels import EMOTIONS, SENTIMENTS
from emostream.model.training.shipping import model_version
from emostream.model.training.tasks import TASKS, evaluate_dataset
from emostream.model.weights import Weights

MAX_SHIPPED_BYTES = 25 * 1000 * 1000


@pytest.fixture(scope="module")
def served():
    model, card = Weights.DEFAULT.load()
    return model, card


@pytest.fixture(scope="module")
def served_cache(served, tmp_path_factory):
    """Features from the served (fine-tuned) encoders, in a cache of this module's own."""
    _, card = served
    encoder = Encoder(card["encoders"]["image"], card["encoders"]["text"], device="cpu")
    return FeatureCache(encoder, tmp_path_factory.mktemp("served-features"))


def test_card_matches_the_shipped_files(served, served_cache):
    _, card = served
    enc = served_cache.encoder
    assert card["encoders"]["version"] == enc.version
    assert card["version"] == model_version(Weights.DEFAULT.path, enc.version)
    assert set(card["metrics"]) == set(DATASETS)
    assert card["heads"] == {"emotion": list(EMOTIONS), "sentiment": list(SENTIMENTS)}
    assert "neutral" in card["heads"]["emotion"]
    assert Weights.DEFAULT is Weights.COMMONSPACE_V2
    assert Weights.DEFAULT.transforms.crop == 224


def test_model_version_hashes_base_and_delta(served):
    _, card = served
    for kind, registry in (("text", TEXT_BACKBONES), ("image", IMAGE_BACKBONES)):
        backbone = registry[card["encoders"][kind]]
        delta = DELTAS_DIR / f"{backbone.name}.{kind}-delta.safetensors"
        digest = hashlib.sha256(delta.read_bytes()).hexdigest()[:8]
        assert backbone.version.endswith(f"+ft-{digest}"), backbone.version
        assert backbone.version in card["encoders"]["version"]


def test_shipped_weights_are_small():
    files = [Weights.DEFAULT.path, *DELTAS_DIR.glob("*-delta.safetensors")]
    assert sum(f.stat().st_size for f in files) <= MAX_SHIPPED_BYTES


def test_the_delta_changes_the_base_encoder(served):
    """Base weights from the package, the fine-tuned layers from the delta on top."""
    _, card = served
    texts = ["I am furious about this", "what a lovely morning"]
    base = Encoder("efficientnet-lite0", "all-minilm-l6-v2", device="cpu").encode_texts(texts)
    tuned = Encoder("efficientnet-lite0", card["encoders"]["text"], device="cpu")
    out = tuned.encode_texts(texts)
    assert out.shape == base.shape
    assert not torch.allclose(out, base, atol=1e-3)


def test_a_foreign_delta_is_refused(tmp_path):
    from safetensors.torch import save_file

    from emostream.model.text_model import MiniLM

    bad = tmp_path / "bad.safetensors"
    save_file({"encoder.layer.9.nonsense": torch.zeros(2)}, str(bad))
    with pytest.raises(ValueError, match="keys not in MiniLM"):
        MiniLM().load_delta(bad)


def test_an_int8_delta_loads_back_close_to_its_float_weights(tmp_path):
    """``save_delta(bits=8)``: matrices as int8 with a scale per row, at about half the
    size of float16, and the encoder it loads gives nearly the same features."""
    from emostream.model.text_model import MiniLM

    torch.manual_seed(0)
    tuned = MiniLM(tuned_layers=6)
    with torch.no_grad():
        for p in tuned.upper_layers.parameters():
            p.add_(0.01 * torch.randn_like(p))
    tuned.save_delta(tmp_path / "d16.safetensors", bits=16)
    tuned.save_delta(tmp_path / "d8.safetensors", bits=8)
    small, full = (tmp_path / f"d{b}.safetensors" for b in (8, 16))
    assert small.stat().st_size < 0.55 * full.stat().st_size
    back = MiniLM()
    back.load_delta(small)
    want, got = tuned.bert.state_dict(), back.bert.state_dict()
    key = "encoder.layer.0.attention.self.query.weight"
    step = want[key].abs().amax(dim=1, keepdim=True) / 127
    assert ((got[key] - want[key]).abs() <= step * 0.51 + 1e-3).all()
    assert not torch.equal(got[key], MiniLM().bert.state_dict()[key])  # the delta landed
    texts = ["I am furious about this", "what a lovely morning", "ok"]
    with torch.no_grad():
        cos = (tuned.eval()(texts) * back.eval()(texts)).sum(-1)
    assert (cos > 0.999).all(), cos
    with pytest.raises(ValueError, match="bits"):
        tuned.save_delta(tmp_path / "d4.safetensors", bits=4)


def test_calibration_is_in_the_card_and_helps(served):
    _, card = served
    for head in ("emotion", "sentiment"):
        cal = card["calibration"][head]
        assert cal["temperature"] > 0
        assert cal["ece_test_after"] <= cal["ece_test_before"], (head, cal)


@pytest.mark.parametrize("name", DATASETS)
def test_beats_the_majority_answer_on_a_slice_of_the_test_split(
    name, served, data_dir, served_cache
):
    model, _ = served
    items = Dataset.load(name, data_dir).split("test")
    step = max(1, len(items) // 400)
    sl = items[::step][:400]  # every k-th post (at most 400): spans all labels
    result = evaluate_dataset(model, sl, served_cache.features(sl, progress=False), "both")
    task = TASKS[name]
    truths = [t for t in (task.truth(i) for i in sl) if t in task.classes]
    n = len(truths)
    # The baseline: always answering the slice's majority class.
    p = max(truths.count(c) for c in task.classes) / n
    majority_macro_f1 = (2 * p / (1 + p)) / len(task.classes)
    assert result["n"] == n
    assert result["accuracy"] > p, (name, result["accuracy"], p)
    # and by a margin: the lower end of the bootstrap 95% interval of macro-F1 (computed on
    # this slice) clears the majority answer's macro-F1
    lower = result["macro_f1_ci95"][0]
    assert lower > majority_macro_f1, (name, result["macro_f1_ci95"], majority_macro_f1)


def test_shipped_file_loads_as_commonspace_with_a_head_per_dataset():
    model, _ = load_checkpoint(Weights.DEFAULT.path)
    assert model.config.kind == "commonspace"
    heads = model.config.heads
    assert heads["emotion"] == len(EMOTIONS) and heads["sentiment"] == len(SENTIMENTS)
    assert {h for h in heads if h.startswith("ds_")} == {
        "ds_" + d.replace("-", "_") for d in DATASETS
    }
    # the served heads are mixed from those, gated over every dataset (experts.py)
    experts = model.config.experts
    assert experts["domains"] == list(DATASETS) and model.gate is not None
    experts_of = {h: {e["head"] for e in group} for h, group in experts["heads"].items()}
    assert experts_of["emotion"] | experts_of["sentiment"] == {h for h in heads if h[:3] == "ds_"}


def test_missing_modality_table_is_the_cards(served, data_dir, served_cache):
    """The served model given both, text only, image only, on the paired datasets: the
    table the card reports, recomputed here (to within one post)."""
    model, card = served
    for name in ("mvsa-single", "twitter-ii"):
        items = Dataset.load(name, data_dir).split("test")
        feats = served_cache.features(items, progress=False)
        row = {}
        for cond in ("both", "text", "image"):
            r = evaluate_dataset(model, items, feats, cond)
            row[cond] = round(r["accuracy"], 3)
            expected = card["metrics"][name][cond]
            assert abs(r["accuracy"] - expected["accuracy"]) <= 1 / r["n"] + 1e-9, (name, cond)
        print(name, row)


def test_text_and_picture_emotion_pools_the_two_answers(served):
    """Emotion of a post with both: the weighted mean of the answers to each alone, the
    text's weight fitted on val pairs (pairs.py) and recorded in the card with the test
    pairs' accuracy."""
    model, card = served
    w = model.config.modality_pool["emotion"]
    assert card["training"]["modality_pool"]["emotion"] == w
    table = card["training"]["modality_pool"]["val_mean_accuracy"]
    assert table[str(w)] == max(table.values())
    assert set(card["pairs"]) == {
        "photo+reddit-emotions",
        "photo+flickr-fi-text",
        "photo+goemotions",
        "matched",
    }


def test_text_and_picture_sentiment_keeps_the_fused_answer_for_tweets(served):
    """Sentiment of a post with both: the fused answer as far as the text reads like a tweet
    of mvsa-single or twitter-ii (the sets labelled on text and picture), else the pooled
    answers to each alone; the text's weight fitted on val and recorded in the card with
    the test pairs' accuracy."""
    model, card = served
    assert model.config.fused_for == {"sentiment": ["mvsa-single", "twitter-ii"]}
    w = model.config.modality_pool["sentiment"]
    pool = card["training"]["modality_pool"]
    assert pool["sentiment"] == w and pool["fused_for"] == model.config.fused_for
    assert pool["sentiment_val_score"][str(w)] == max(pool["sentiment_val_score"].values())
    assert set(card["pairs_sentiment"]) == {
        "photo+reddit-emotions",
        "photo+flickr-fi-text",
        "photo+goemotions",
        "mvsa-single",
        "twitter-ii",
    }
