"""The common-space ranking loss and the masked soft cross-entropy."""

import pytest
import torch
import torch.nn.functional as F

from emostream.model.training.losses import common_space_loss, soft_cross_entropy


def test_zero_when_each_image_sits_on_its_own_text():
    t = torch.eye(4)
    labels = torch.tensor([0, 1, 2, 3])
    loss = common_space_loss(t.clone(), t, labels, torch.ones(4, dtype=torch.bool), margin=0.5)
    assert loss.item() == 0.0


def test_positive_when_image_is_nearer_another_class_text():
    t = torch.eye(2)
    v = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # each image on the other post's text
    loss = common_space_loss(v, t, torch.tensor([0, 1]), torch.ones(2, dtype=torch.bool), 0.2)
    # s(v_i, t_i) = 0, s(v_i, t_j) = 1: hinge = 0.2 - 0 + 1
    assert abs(loss.item() - 1.2) < 1e-6


def test_same_class_posts_are_not_negatives():
    t = torch.eye(2)
    v = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    loss = common_space_loss(v, t, torch.tensor([1, 1]), torch.ones(2, dtype=torch.bool), 0.2)
    assert loss.item() == 0.0


def test_unpaired_and_unlabelled_posts_are_ignored():
    t = torch.eye(3)
    v = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    paired = torch.tensor([True, True, False])
    assert common_space_loss(v, t, torch.tensor([0, 1, 2]), paired).item() > 0
    assert common_space_loss(v, t, torch.tensor([0, -1, 2]), paired).item() == 0.0


def test_gradient_pulls_image_towards_own_text():
    torch.manual_seed(0)
    t = F.normalize(torch.randn(8, 16), dim=-1)
    v = torch.randn(8, 16, requires_grad=True)
    labels = torch.arange(8) % 3
    paired = torch.ones(8, dtype=torch.bool)
    opt = torch.optim.SGD([v], lr=2.0)
    first = common_space_loss(v, t, labels, paired).item()
    own_before = F.cosine_similarity(v, t).mean().item()
    for _ in range(200):
        opt.zero_grad()
        common_space_loss(v, t, labels, paired).backward()
        opt.step()
    assert common_space_loss(v, t, labels, paired).item() < first / 4
    assert F.cosine_similarity(v, t).mean().item() > own_before + 0.15


def test_soft_ce_equals_cross_entropy_on_one_hot():
    torch.manual_seed(0)
    logits = torch.randn(5, 4)
    y = torch.tensor([0, 3, 1, 2, 2])
    rows = torch.ones(5, dtype=torch.bool)
    got = soft_cross_entropy(logits, F.one_hot(y, 4).float(), rows, torch.ones(5))
    torch.testing.assert_close(got, F.cross_entropy(logits, y))


def test_soft_ce_masks_rows_and_weights_them():
    logits = torch.randn(3, 2)
    target = F.one_hot(torch.tensor([0, 1, 1]), 2).float()
    rows = torch.tensor([True, False, True])
    w = torch.tensor([1.0, 5.0, 3.0])
    got = soft_cross_entropy(logits, target, rows, w)
    per = -(target * logits.log_softmax(-1)).sum(-1)
    torch.testing.assert_close(got, (per[0] * 1 + per[2] * 3) / 4)
    assert soft_cross_entropy(logits, target, torch.zeros(3, dtype=torch.bool), w).item() == 0


def test_soft_ce_restricted_to_allowed_classes_ignores_the_others():
    logits = torch.tensor([[2.0, 0.0, 5.0], [0.0, 1.0, 9.0]])
    target = F.one_hot(torch.tensor([0, 1]), 3).float()
    rows = torch.ones(2, dtype=torch.bool)
    allowed = torch.tensor([[True, True, False], [True, True, False]])
    got = soft_cross_entropy(logits, target, rows, torch.ones(2), allowed)
    # class 2 takes no probability mass: the same as a 2-class softmax over classes 0 and 1
    want = F.cross_entropy(logits[:, :2], torch.tensor([0, 1]))
    torch.testing.assert_close(got, want)
    moved = logits.clone()
    moved[:, 2] = -50.0  # whatever the excluded logit says, the loss is the same
    torch.testing.assert_close(
        soft_cross_entropy(moved, target, rows, torch.ones(2), allowed), want
    )


def test_class_weights_favour_rare_classes_and_keep_the_mean_row_weight():
    from emostream.model.training.losses import class_weights

    targets = torch.nn.functional.one_hot(torch.tensor([0] * 90 + [1] * 10), 2).float()
    w = class_weights(targets)
    assert w[1] / w[0] == pytest.approx(3.0)  # sqrt(90 / 10)
    assert (targets * w).sum(1).mean() == pytest.approx(1.0)
