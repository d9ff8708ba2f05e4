import math

import pytest
import torch

from haltingvt.losses import LossWeights, distribution_target, motion_loss, ponder_loss, task_loss, total_loss


def test_task_loss_is_cross_entropy_by_hand():
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    expected = (-math.log(math.exp(2) / (math.exp(2) + 1)) - math.log(0.5)) / 2
    assert task_loss(logits, torch.tensor([0, 1])).item() == pytest.approx(expected, rel=1e-6)


def test_multi_hot_task_loss_sums_positive_classes():
    logits = torch.zeros(1, 4)
    y = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    assert task_loss(logits, y).item() == pytest.approx(2 * math.log(4), rel=1e-6)


def test_ponder_loss_is_the_mean_over_every_token():
    rho = torch.tensor([[1.5, 2.0, 3.25], [1.0, 1.0, 1.0]])
    assert ponder_loss(rho).item() == pytest.approx((1.5 + 2 + 3.25 + 3) / 6)


def test_motion_loss_real_is_one():
    logits = torch.tensor([[0.0, math.log(3.0)]])  # p(real) = 3/4
    assert motion_loss(logits, torch.tensor([1])).item() == pytest.approx(-math.log(0.75), rel=1e-6)
    assert motion_loss(logits, torch.tensor([0])).item() == pytest.approx(-math.log(0.25), rel=1e-6)


def test_total_weights_terms_and_prior_is_off_by_default():
    logits, motion = torch.zeros(2, 3), torch.zeros(2, 2)
    rho = torch.full((2, 5), 4.0)
    loss, terms = total_loss(logits, motion, rho, torch.tensor([0, 1]), torch.tensor([1, 0]), LossWeights())
    assert set(terms) == {"task", "ponder", "motion"}
    assert terms["ponder"] == pytest.approx(5e-4 * 4.0)
    assert loss.item() == pytest.approx(math.log(3) + 5e-4 * 4 + math.log(2), rel=1e-6)
    _, terms = total_loss(logits, motion, rho, torch.tensor([0, 1]), torch.tensor([1, 0]),
                          LossWeights(motion=0.0, distr_prior=0.01), halting_per_layer=torch.full((6,), 0.2))
    assert set(terms) == {"task", "ponder", "prior"} and terms["prior"] > 0


def test_distribution_target_peaks_at_two_thirds_depth():
    target = distribution_target(12)
    assert target.argmax().item() == 8 and target.sum().item() == pytest.approx(1.0)
