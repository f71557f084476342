"""The shipped common-space model: its card is honest and it beats chance on every dataset."""

import pytest

from emostream.model.checkpoint import load_checkpoint
from emostream.model.datasets import DATASETS, Dataset
from emostream.model.served import TASKS, evaluate_dataset
from emostream.model.weights import Weights, file_version


@pytest.fixture(scope="module")
def served():
    model, card = Weights.DEFAULT.load()
    return model, card


def test_card_matches_the_shipped_file(served, encoder):
    _, card = served
    assert card["version"] == file_version(Weights.DEFAULT.path, "cs1")
    assert card["encoders"]["version"] == encoder.version
    assert set(card["metrics"]) == set(DATASETS)
    assert card["heads"]["emotion"] == ["anger", "disgust", "fear", "joy", "sadness", "surprise"]
    assert Weights.DEFAULT is Weights.COMMONSPACE_V1
    assert Weights.DEFAULT.transforms.crop == 224


@pytest.mark.parametrize("name", DATASETS)
def test_beats_chance_on_a_slice_of_the_test_split(name, served, data_dir, feature_cache):
    model, _ = served
    items = Dataset.load(name, data_dir).split("test")
    step = max(1, len(items) // 400)
    sl = items[::step][:400]  # every k-th post (at most 400): spans all labels
    result = evaluate_dataset(model, sl, feature_cache.features(sl, progress=False), "both")
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


def test_shipped_file_loads_as_commonspace():
    model, _ = load_checkpoint(Weights.DEFAULT.path)
    assert model.config.kind == "commonspace"
    assert model.config.heads == {"emotion": 6, "sentiment": 3}
