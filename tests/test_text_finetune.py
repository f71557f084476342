"""Fine-tuning MiniLM's upper layers: targets, the auxiliary GoEmotions head, resume."""

import csv
import json

import numpy as np
import torch

from emostream.model.training.datasets import Item
from emostream.model.training.text_finetune import (
    FINE_LABELS,
    FinetuneConfig,
    fine_target,
    finetune,
)


def comment(labels: str) -> Item:
    return Item("goemotions", "c1", "train", "anger", "ugh, again?", None, {"labels": labels})


def test_fine_labels_are_the_goemotions_columns(data_dir):
    with (data_dir / "goemotions" / "posts.csv").open(newline="") as f:
        header = next(csv.reader(f))
    assert tuple(header[header.index("ekman_labels") + 1 :]) == FINE_LABELS


def test_a_comments_fine_labels_share_its_target():
    t = fine_target(comment("annoyance|disapproval"))
    assert t.shape == (28,) and np.isclose(t.sum(), 1.0)
    assert t[FINE_LABELS.index("annoyance")] == t[FINE_LABELS.index("disapproval")] == 0.5
    assert not fine_target(comment("")).any()  # no labels: no auxiliary signal


def test_a_run_with_the_fine_head_trains_checkpoints_and_resumes(tmp_path, data_dir):
    cfg = FinetuneConfig(steps=4, eval_every=2, train_limit=24, val_limit=16, fine_weight=0.5)
    state = finetune(tmp_path, cfg, data_dir)
    assert [h["step"] for h in state["history"]] == [2, 4]
    assert (tmp_path / "best.text-delta.safetensors").is_file()
    assert json.loads((tmp_path / "history.json").read_text())["step"] == 4
    heads = torch.load(tmp_path / "last.pt", weights_only=False)["heads"]
    assert heads["heads.goemotions_fine.weight"].shape == (28, 384)
    again = finetune(tmp_path, cfg, data_dir)  # resumes at the end: nothing left to run
    assert again["history"] == state["history"]
