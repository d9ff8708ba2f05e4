"""Helpers for tests and benchmarks: models whose tokens really halt, at every layer."""

from __future__ import annotations

import torch

from .config import HaltingVTConfig
from .model import HaltingVT


@torch.no_grad()
def make_it_halt(model: HaltingVT, seed: int = 0, strength: float = 20.0) -> HaltingVT:
    """Random init leaves channel 0 of the residual stream near 0, so every token halts at the same
    layer. Giving each joint block's fc2 row 0 larger random weights spreads channel 0 (and so the
    halting scores) across tokens, so tokens halt at different layers and videos differ."""
    g = torch.Generator().manual_seed(seed)
    for blk in model.joint:
        row = blk.mlp.fc2.weight[0]
        row.copy_(torch.randn(row.shape, generator=g) * 0.02 * strength)
    return model


def random_model(cfg: HaltingVTConfig, seed: int = 0, strength: float = 20.0) -> HaltingVT:
    torch.manual_seed(seed)
    return make_it_halt(HaltingVT(cfg).eval(), seed, strength)


def random_video(cfg: HaltingVTConfig, batch: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, cfg.num_frames, cfg.img_size, cfg.img_size, generator=g) * 2 - 1  # (B, 3, T, S, S)


@torch.no_grad()
def sharpen_attention(model: HaltingVT, factor: float = 4.0) -> HaltingVT:
    """Scales every joint block's query and key weights. At random init every attention row is near
    uniform, so vid-TLDR's saliency (the spread of row entropies, min-max normalised) is rounding
    noise blown up: ONNX Runtime and PyTorch then disagree by up to 5e-3 relative on the logits
    (measured on test-micro). Sharper rows, as in a trained model, make the saliency well defined."""
    D = model.cfg.embed_dim
    for blk in model.joint:
        blk.attn.qkv.weight[: 2 * D] *= factor
    return model
