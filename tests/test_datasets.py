"""The loaders on the real data: counts match the manifest, labels map onto both heads."""

import json

import numpy as np
import pytest

from emostream.model.training.datasets import DATASETS, SPLITS, Dataset
from emostream.model.training.labels import EMOTIONS, SENTIMENTS, emotion_of, sentiment_of
from emostream.model.training.targets import emotion_target, label_space, sentiment_target


@pytest.fixture(scope="module")
def manifest(data_dir):
    return json.loads((data_dir / "MANIFEST.json").read_text())["datasets"]


@pytest.mark.parametrize("name", DATASETS)
def test_counts_per_split_and_label_match_manifest(name, data_dir, manifest):
    ds = Dataset.load(name, data_dir)
    assert len(ds.items) == manifest[name]["rows"]
    for split in SPLITS:
        items = ds.split(split)
        assert len(items) == manifest[name]["counts"][split]["total"]
        column = [i.extra.get("ekman_label", i.label) for i in items]  # the file's label
        per = {lab: column.count(lab) for lab in ds.labels}
        assert per == manifest[name]["counts"][split]["per_label"]


def test_goemotions_labels_follow_the_monitor_guide(data_dir):
    """Questions and stances are neutral, astonishment is surprise (docs/labels.md); the
    published Ekman label stays beside it."""
    from emostream.model.training.labels import goemotions_emotions, goemotions_sentiments

    assert goemotions_emotions(["curiosity"]) == ["neutral"]
    assert goemotions_emotions(["confusion", "surprise"]) == ["surprise"]
    assert goemotions_emotions(["approval"]) == ["neutral"]
    assert goemotions_emotions(["annoyance", "neutral"]) == ["anger"]
    assert goemotions_sentiments(["disapproval"]) == ["negative"]
    assert goemotions_sentiments(["surprise"]) == []
    items = Dataset.load("goemotions", data_dir).split("val")
    asks = [i for i in items if i.extra["labels"] == "curiosity"]
    assert asks and all(i.label == "neutral" and i.extra["ekman_label"] == "surprise" for i in asks)


@pytest.mark.parametrize("name", DATASETS)
def test_modalities_are_what_the_files_hold(name, data_dir, manifest):
    ds = Dataset.load(name, data_dir)
    n_images = sum(i.has_image for i in ds.items)
    assert n_images == manifest[name]["images"]
    assert ("image" in ds.modalities) == (n_images > 0)
    if "text" not in ds.modalities:
        assert not any(i.has_text for i in ds.items)
    ids = [i.id for i in ds.items]
    assert len(set(ids)) == len(ids)
    assert all(isinstance(i, str) for i in ids)  # numeric-looking ids stay strings


def test_ids_that_look_numeric_keep_their_form(data_dir):
    ds = Dataset.load("twitter-ii", data_dir)
    assert ds.items[0].id == "2"


@pytest.mark.parametrize("name", DATASETS)
def test_every_label_maps_to_at_least_one_head(name, data_dir):
    ds = Dataset.load(name, data_dir)
    for label in ds.labels:
        e, s = emotion_of(name, label), sentiment_of(name, label)
        assert e is None or e in EMOTIONS
        assert s is None or s in SENTIMENTS
        assert e is not None or s is not None, (name, label)


@pytest.mark.parametrize("name", DATASETS)
def test_targets_are_distributions(name, data_dir):
    ds = Dataset.load(name, data_dir)
    for item in ds.split("val")[:200]:
        for t in (emotion_target(item), sentiment_target(item)):
            if t is not None:
                assert np.isclose(t.sum(), 1.0) and (t >= 0).all()


def test_emotion6_emotion_target_is_its_label_not_the_user_study_spread(data_dir):
    item = next(i for i in Dataset.load("emotion6", data_dir).items if i.id == "anger_100")
    # the raters' distribution peaks on disgust and sadness (0.394444 each) for this anger item
    assert float(item.extra["prob_disgust"]) > float(item.extra["prob_anger"])
    assert emotion_target(item).tolist() == [float(e == "anger") for e in EMOTIONS]


@pytest.mark.parametrize("name", DATASETS)
def test_every_target_falls_inside_its_datasets_label_space(name, data_dir):
    ds = Dataset.load(name, data_dir)
    space = label_space(name, ds.labels)
    for item in ds.split("train"):
        for head, names, fn in (
            ("emotion", EMOTIONS, emotion_target),
            ("sentiment", SENTIMENTS, sentiment_target),
        ):
            t = fn(item)
            if t is not None:
                assert {names[i] for i in np.flatnonzero(t)} <= set(space[head]), (item.id, head)


def test_label_spaces_leave_out_what_a_dataset_cannot_say():
    reddit = label_space("reddit-emotions", ("anger", "disgust", "fear", "joy"))
    assert reddit == {
        "emotion": ("anger", "disgust", "fear", "joy"),
        "sentiment": ("negative", "positive"),
    }
    assert label_space("goemotions", EMOTIONS) == {"emotion": EMOTIONS, "sentiment": SENTIMENTS}
    twitter = label_space("twitter-ii", ("negative", "positive"))
    assert twitter == {"emotion": (), "sentiment": ("negative", "positive")}


def test_unknown_dataset_and_split_are_clear_errors(data_dir):
    with pytest.raises(ValueError, match="unknown dataset"):
        Dataset.load("imagenet", data_dir)
    with pytest.raises(ValueError, match="split"):
        Dataset.load("emotion6", data_dir).split("dev")
    with pytest.raises(FileNotFoundError, match="EMOSTREAM_DATA_DIR"):
        Dataset.load("emotion6", data_dir / "nowhere")
