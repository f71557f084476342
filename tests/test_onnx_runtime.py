"""The ONNX Runtime path (the workers' CPU default) agrees with the plain torch model."""

from __future__ import annotations

import pytest
import torch

from emostream.model.classifier import EmotionClassifier
from emostream.model.encoder import Encoder, PostInput
from emostream.model.training.datasets import DATASETS, Dataset

SLICE = 24
"""Test posts per dataset compared."""
MAX_PROB_DIFF = 1e-3
"""onnx (fp32): largest change of any class probability of any post; every top label
agrees."""
INT8_AGREEMENT = 0.90
"""onnx-int8: top labels that must agree over all slices (measured on whole test splits:
97.9% reddit-emotions, 97.0% goemotions)."""


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx")


@pytest.fixture(scope="module")
def classifiers(onnx_dir):
    """Factory of served classifiers by runtime, each loaded once, ONNX files in a temp dir."""
    mp = pytest.MonkeyPatch()
    mp.setenv("EMOSTREAM_ONNX_DIR", str(onnx_dir))
    made: dict[str, EmotionClassifier] = {}

    def get(runtime: str) -> EmotionClassifier:
        if runtime not in made:
            made[runtime] = EmotionClassifier(device="cpu", runtime=runtime)
        return made[runtime]

    yield get
    mp.undo()


def compare(a_clf, b_clf, data_dir) -> tuple[int, int, float]:
    """(top labels equal, posts, largest probability change) over a slice of each split."""
    same, total, worst = 0, 0, 0.0
    for dataset in DATASETS:
        posts = slice_posts(data_dir, dataset)
        for a, b in zip(a_clf.classify(posts), b_clf.classify(posts), strict=True):
            same += a.label == b.label
            total += 1
            worst = max(worst, *(abs(a.emotions[k] - b.emotions[k]) for k in a.emotions))
            worst = max(worst, *(abs(a.sentiments[k] - b.sentiments[k]) for k in a.sentiments))
    print(f"\n{same}/{total} top labels agree; largest probability change {worst:.4f}")
    return same, total, worst


def slice_posts(data_dir, dataset: str) -> list[PostInput]:
    items = Dataset.load(dataset, data_dir).split("test")[:SLICE]
    out = []
    for it in items:
        image = it.image_path.read_bytes() if it.image_path and it.image_path.is_file() else None
        out.append(PostInput(it.text if it.has_text else None, image))
    return [p for p in out if p.text or p.image]


def test_onnx_gives_the_same_predictions_on_every_test_split(classifiers, data_dir):
    eager, fast = classifiers("eager"), classifiers("onnx")
    assert (eager.encoder.runtime, fast.encoder.runtime) == ("eager", "onnx")
    same, total, worst = compare(eager, fast, data_dir)
    assert same == total and worst <= MAX_PROB_DIFF


def test_int8_text_keeps_most_top_labels(classifiers, data_dir):
    same, total, _ = compare(classifiers("eager"), classifiers("onnx-int8"), data_dir)
    assert same / total >= INT8_AGREEMENT


def test_image_features_are_the_same_numbers(classifiers, data_dir):
    eager, fast = classifiers("eager"), classifiers("onnx")
    pics = [eager.encoder.decode(p.image) for p in slice_posts(data_dir, "emotion6")[:8]]
    torch.testing.assert_close(
        fast.encoder.encode_images(pics), eager.encoder.encode_images(pics), atol=1e-3, rtol=0
    )


def test_files_are_made_once_and_reused(classifiers, onnx_dir):
    classifiers("onnx-int8")
    files = sorted(onnx_dir.glob("*.onnx"))
    assert sorted(f.name.rsplit(".", 2)[1] for f in files) == ["fp32", "fp32", "int8-q2"]
    stamps = [f.stat().st_mtime_ns for f in files]
    again = EmotionClassifier(device="cpu", runtime="onnx-int8")
    again.classify([PostInput("reused", torch.zeros(3, 224, 224, dtype=torch.uint8))])
    assert [f.stat().st_mtime_ns for f in files] == stamps
    assert not list(onnx_dir.glob("*.tmp"))


def test_runtime_is_checked():
    with pytest.raises(ValueError, match="runtime must be"):
        Encoder(device="cpu", runtime="fast")
    with pytest.raises(ValueError, match="exportable"):
        Encoder(device="cpu", text="all-minilm-l6-v2", runtime="onnx")
    assert Encoder(device="cpu", text="all-minilm-l6-v2", runtime="auto").runtime == "eager"


def test_idle_threads_sleep_unless_told_to_spin(onnx_dir, monkeypatch):
    from emostream.model.onnx_runtime import _session

    path = next(onnx_dir.glob("*.fp32.onnx"))  # made by the tests above
    entry = "session.intra_op.allow_spinning"
    assert _session(path).get_session_options().get_session_config_entry(entry) == "0"
    monkeypatch.setenv("EMOSTREAM_ORT_SPIN", "1")
    assert _session(path).get_session_options().get_session_config_entry(entry) == "1"
    monkeypatch.setenv("EMOSTREAM_ORT_SPIN", "yes")
    with pytest.raises(ValueError, match="EMOSTREAM_ORT_SPIN"):
        _session(path)


INT8_IMAGE_AGREEMENT = 0.90
"""onnx-int8-image: top labels that must agree with onnx (fp32) over the slices of the
splits with pictures (measured on whole test splits: docs/performance.md)."""
INT8_IMAGE_MEAN_PROB_DIFF = 0.03
"""onnx-int8-image: mean absolute change of a class probability over those posts."""


def test_int8_image_encoder_keeps_most_top_labels(classifiers, data_dir):
    fp32, int8 = classifiers("onnx"), classifiers("onnx-int8-image")
    same, total, diffs = 0, 0, []
    for dataset in DATASETS:
        posts = slice_posts(data_dir, dataset)
        for post, a, b in zip(posts, fp32.classify(posts), int8.classify(posts), strict=True):
            changes = [abs(a.emotions[k] - b.emotions[k]) for k in a.emotions]
            changes += [abs(a.sentiments[k] - b.sentiments[k]) for k in a.sentiments]
            if post.image is None:  # the text encoder is the same: the same numbers
                assert max(changes) <= 1e-5 and a.label == b.label
                continue
            same += a.label == b.label
            total += 1
            diffs += changes
    print(
        f"\n{same}/{total} top labels agree; mean probability change {sum(diffs) / len(diffs):.4f}"
    )
    assert total >= 3 * SLICE  # emotion6, mvsa-single and twitter-ii have pictures
    assert same / total >= INT8_IMAGE_AGREEMENT
    assert sum(diffs) / len(diffs) <= INT8_IMAGE_MEAN_PROB_DIFF


def test_calibration_writes_ranges_that_fit_the_export(classifiers, data_dir, tmp_path):
    from emostream.model.onnx_runtime import _check_ranges, image_fp32_file
    from emostream.model.training.image_calibration import calibrate, training_pictures

    encoder = classifiers("onnx").encoder
    pics = training_pictures(encoder, 2, data_dir)
    out = calibrate(encoder, pics, tmp_path / "ranges.json")
    bb = encoder.image_backbone
    _check_ranges(image_fp32_file(bb.version, bb.build, encoder.transform.crop), out)


def test_ranges_of_another_export_are_refused(classifiers, tmp_path):
    import json

    from emostream.model.onnx_runtime import _check_ranges, image_fp32_file, image_ranges_path

    encoder = classifiers("onnx").encoder
    bb = encoder.image_backbone
    model = image_fp32_file(bb.version, bb.build, encoder.transform.crop)
    doc = json.loads(image_ranges_path(bb.version).read_text())
    doc["data"]["/not/in/this/graph"] = next(iter(doc["data"].values()))
    (tmp_path / "other.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="do not match"):
        _check_ranges(model, tmp_path / "other.json")
    with pytest.raises(FileNotFoundError, match="image_calibration"):
        _check_ranges(model, tmp_path / "missing.json")
