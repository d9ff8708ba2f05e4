import math

import torch

from haltingvt.halting import NEG_INF, act_step, halting_score, null_logit_bias


def t(*v):
    return torch.tensor(v)


def test_halting_score_reads_channel_zero():
    assert halting_score(t(2.0), 10.0, 20.0).item() == 0.5
    assert math.isclose(halting_score(t(0.0), 10.0, 5.0).item(), 1 / (1 + math.exp(5)), rel_tol=1e-6)


def test_act_step_by_hand():
    active = torch.tensor([True, True, True, False])
    c, r, h = t(0.5, 0.2, 0.0, 1.2), t(0.5, 0.8, 1.0, 0.0), t(0.6, 0.3, 0.999, 0.9)
    c2, r2, w, reached, going = act_step(c, r, h, active, 0.99, last=False)
    assert torch.allclose(c2, t(1.1, 0.5, 0.999, 2.1))
    assert reached.tolist() == [True, False, True, False]  # crosses 0.99: takes its remainder
    assert going.tolist() == [False, True, False, False]
    assert torch.allclose(w, t(0.5, 0.3, 1.0, 0.0))  # remainder, h, remainder, nothing
    assert torch.allclose(r2, t(0.5, 0.5, 1.0, 0.0))


def test_last_layer_reaches_every_active_token_even_above_one():
    active = torch.tensor([True, False])
    _, _, w, reached, going = act_step(t(0.2, 0.0), t(0.8, 1.0), t(1.0, 1.0), active, 5.0, last=True)
    assert reached.tolist() == [True, False] and not going.any()
    assert torch.allclose(w, t(0.8, 0.0))


def test_weights_of_a_token_sum_to_one():
    c, r = torch.zeros(1), torch.ones(1)
    total, active = 0.0, torch.tensor([True])
    for i, h in enumerate([0.3, 0.4, 0.2, 0.5]):
        c, r, w, _, active = act_step(c, r, t(h), active, 0.99, last=i == 3)
        total += w.item()
    assert math.isclose(total, 1.0, rel_tol=1e-6)


def test_null_logit_is_log_count_or_minus_infinity():
    b = null_logit_bias(t(0.0, 1.0, 4.0), attend_halted=True)
    assert b.tolist()[0] == NEG_INF and b[1] == 0.0 and math.isclose(b[2].item(), math.log(4), rel_tol=1e-6)
    assert (null_logit_bias(t(3.0), attend_halted=False) == NEG_INF).all()
