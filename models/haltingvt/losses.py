"""Losses as the authors use them (`AdaHaltKLCELoss` in `models/losses/ada_halt_ce_loss.py` of
github.com/dun-research/HaltingVT at commit 4830e2a).

total = task CE (real and static clips, both with the video's label)
      + ponder_weight * mean(rho)                  (rho = steps + remainder, every token, class token too)
      + motion_weight * CE(motion head, real=1 / static=0)
      [+ distr_prior_weight * KL(per-layer mean halting || Gaussian target), A-ViT's prior, off by default]

The authors' `motion_loss_beta` only switches the motion term on: it is never multiplied in, so
the motion term's effective weight is 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossWeights:
    ponder: float = 5e-4
    motion: float = 1.0  # 0 switches the Motion Loss off
    distr_prior: float = 0.0  # A-ViT's distribution prior; the authors leave it off


def task_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on the ACT-weighted class token. logits (B, C); labels (B,) class ids or
    (B, C) multi-hot targets (ActivityNet: -(y * log_softmax).sum(1).mean())."""
    if labels.dim() == 2:
        return -(labels * F.log_softmax(logits, dim=-1)).sum(dim=1).mean()
    return F.cross_entropy(logits, labels)


def ponder_loss(rho: torch.Tensor) -> torch.Tensor:
    """Mean over batch and every token of (layers active + remainder at the halting layer). rho (B, N)."""
    return rho.mean()


def motion_loss(motion_logits: torch.Tensor, is_real: torch.Tensor) -> torch.Tensor:
    """2-way CE: 1 = real clip, 0 = static clip (one frame repeated). motion_logits (B, 2), is_real (B,)."""
    return F.cross_entropy(motion_logits, is_real.long())


def distribution_target(layers: int, mean: float = 8.0, std: float = 1.0) -> torch.Tensor:
    """A-ViT's Gaussian prior over halting layers, scaled to this depth: pdf at 0..layers-1 with the
    mean at 2/3 of the depth, normalised to sum to 1."""
    mean = mean * layers / 12.0
    x = torch.arange(layers, dtype=torch.float32)
    pdf = torch.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))  # (L,)
    return pdf / pdf.sum()


def distribution_prior_loss(halting_per_layer: torch.Tensor) -> torch.Tensor:
    """KL(target || normalised per-layer mean halting score). halting_per_layer (L,), mean over batch
    and tokens of h at each layer."""
    dist = halting_per_layer.clamp(min=1e-8)
    dist = dist / dist.sum()  # (L,)
    target = distribution_target(dist.shape[0]).to(dist.device)  # (L,)
    return F.kl_div(dist.log(), target, reduction="sum")


def total_loss(out_logits: torch.Tensor, motion_logits: torch.Tensor | None, rho: torch.Tensor,
               labels: torch.Tensor, is_real: torch.Tensor, weights: LossWeights,
               halting_per_layer: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """All terms on one batch of real and static clips together. Returns (loss, terms for logging)."""
    terms = {"task": task_loss(out_logits, labels), "ponder": weights.ponder * ponder_loss(rho)}
    if weights.motion > 0:
        assert motion_logits is not None, "the Motion Loss needs the motion head"
        terms["motion"] = weights.motion * motion_loss(motion_logits, is_real)
    if weights.distr_prior > 0:
        assert halting_per_layer is not None, "the distribution prior needs per-layer halting scores"
        terms["prior"] = weights.distr_prior * distribution_prior_loss(halting_per_layer)
    loss = sum(terms.values())
    return loss, {k: float(v.detach()) for k, v in terms.items()}
