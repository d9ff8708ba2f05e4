"""The halting decisions as small pure functions, shared by the reference path, the compact path
and (mirrored op by op) the ONNX graph. Their cases are in tests/test_halting.py.

ACT recursion of the authors' code (A-ViT's, as `HaltingVTModel.forward_features` in
`models/backbones/haltingvt_model.py` of github.com/dun-research/HaltingVT at commit 4830e2a), per
token and layer:
    c += h
    reached     = c > threshold            (or: this is the last layer)
    not_reached = c < threshold            (and: not the last layer)
    out        += z * (R if reached else h if not_reached else 0)
    R          -= h if not_reached else 0
    the token stays active iff not_reached
The authors force h = 1 at the last layer; with their threshold 1 - eps < 1 that makes every active
token "reached" there. We write that as "the last layer reaches every active token", which is the
same for thresholds below 1 and keeps the output a convex combination for thresholds above 1 (used
to switch halting off).
"""

from __future__ import annotations

import torch

NEG_INF = -1.0e9  # finite "minus infinity" for attention logits: exp() underflows to exactly 0, never NaN


def halting_score(z0: torch.Tensor, scale: float, center: float) -> torch.Tensor:
    """h = sigmoid(scale * x0 - center) from channel 0 of a block's output (Q5)."""
    return torch.sigmoid(z0 * scale - center)


def act_step(c: torch.Tensor, r: torch.Tensor, h: torch.Tensor, active: torch.Tensor,
             threshold: float, last: bool) -> tuple[torch.Tensor, ...]:
    """One ACT step for tokens with cumulative score c, remainder r, this layer's score h.

    Returns (c_new, r_new, weight, reached, still_active): weight is the factor of this layer's output
    in the token's ACT sum (0 for inactive tokens), reached whether the token halts here with its
    remainder, still_active whether it goes on to the next layer.
    All tensors share one shape; `active` is bool.
    """
    c_new = c + h
    if last:
        reached = active
        not_reached = torch.zeros_like(active)
    else:
        reached = active & (c_new > threshold)
        not_reached = active & (c_new < threshold)
    weight = torch.where(reached, r, torch.where(not_reached, h, torch.zeros_like(h)))
    r_new = r - torch.where(not_reached, h, torch.zeros_like(h))
    return c_new, r_new, weight, reached, not_reached


def null_logit_bias(n_halted: torch.Tensor, attend_halted: bool) -> torch.Tensor:
    """Logit bias of the one shared null key that stands for all halted tokens of a sample:
    log(n_halted), or "minus infinity" when none has halted (or when halted tokens are not attended)."""
    if not attend_halted:
        return torch.full_like(n_halted, NEG_INF)
    return torch.where(n_halted > 0, torch.log(n_halted.clamp(min=1.0)), torch.full_like(n_halted, NEG_INF))

