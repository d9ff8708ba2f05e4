"""Transformer layers of HaltingVT, with the timm / TimeSformer parameter names the authors'
checkpoints use (norm1, attn.qkv, attn.proj, temporal_norm1, temporal_attn, temporal_fc, norm2, mlp.fc1/fc2).

Shapes: B batch, T frames, P patches per frame, N tokens, D channels, H heads, d = D / H.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import HaltingVTConfig, kept_patches, stem_stages


class DropPath(nn.Module):
    """Stochastic depth per sample (training only)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand(x.shape[0], *([1] * (x.dim() - 1)), device=x.device) >= self.p  # (B, 1, ...)
        return x * keep / (1.0 - self.p)


class PatchEmbed(nn.Module):
    """Per-frame conv 16/16 patch embedding (B, 3, T, S, S) -> (B, T, P, D), raster order per frame;
    key `patch_embed.proj` (the authors')."""

    def __init__(self, in_chans: int, dim: int, patch: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch, stride=patch)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        B, C, T, H, W = video.shape
        frames = video.transpose(1, 2).reshape(B * T, C, H, W)  # (B*T, 3, S, S)
        patches = self.proj(frames).flatten(2).transpose(1, 2)  # (B*T, P, D)
        return patches.reshape(B, T, -1, patches.shape[-1])  # (B, T, P, D)


class ConvStem3d(nn.Module):
    """Space-time conv stem (B, 3, T, S, S) -> (B, T, P, D): the patch embedding of presets trained from
    scratch. Each stage is a conv whose spatial strides multiply to `patch` (so the token grid is that
    of the 16x16 patches of each frame: Glimpser, halting, token order and export are unchanged), whose
    temporal kernel is 3 (stride 1, so T is unchanged), and whose spatial kernel is `stem_kernels`
    (default: the stride, each token sees only its own patch), with a ReLU between stages. Why: from
    scratch, a per-frame linear patch embedding leaves motion to attention, and the ViT sat at chance
    on the motion benchmark for > 950 steps; local space-time convs put "what moved where" into every
    token from step 0, as the small 3D CNN that learns the benchmark in minutes does, and wider kernels
    let a token follow the target across its neighbours' pixels (docs/decisions.md). Key
    `patch_embed.convs.{2i}`.
    """

    def __init__(self, cfg: HaltingVTConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for st in stem_stages(cfg):
            layers += [nn.Conv3d(st.c_in, st.c_out, (3, st.kernel, st.kernel), (1, st.stride, st.stride),
                                 (1, st.pad, st.pad)), nn.ReLU()]
        self.convs = nn.Sequential(*layers[:-1])  # no ReLU after the last stage

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        x = self.convs(video)  # (B, D, T, g, g)
        return x.flatten(3).permute(0, 2, 3, 1)  # (B, T, P, D), raster order per frame


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))  # exact (erf) GELU, as timm's nn.GELU


class Attention(nn.Module):
    """Multi-head self-attention. Optional extras, all used by the compact halting path:
    `key_bias` (B, N) added to every query's logit of each key (padding = NEG_INF), and one shared
    null key/value per head (`null_k`, `null_v`: (H, d)) whose logit gets `null_bias` (B,)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def split_heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        B, N, D = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, D // self.heads)  # (B, N, 3, H, d)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 x (B, H, N, d)
        return q, k, v

    def null_kv(self, ln_bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Key and value that every halted (zeroed) token presents: LayerNorm(0) = its bias."""
        D = ln_bias.shape[0]
        qkv = self.qkv(ln_bias).reshape(3, self.heads, D // self.heads)  # (3, H, d)
        return qkv[1], qkv[2]

    def forward(self, x: torch.Tensor, key_bias: torch.Tensor | None = None,
                null_k: torch.Tensor | None = None, null_v: torch.Tensor | None = None,
                null_bias: torch.Tensor | None = None, return_cls_attn: bool = False, return_merge_parts: bool = False):
        B, N, D = x.shape
        q, k, v = self.split_heads(x)  # (B, H, N, d)
        if null_k is None and not (return_cls_attn or return_merge_parts):
            # Same math as below through PyTorch's fused kernel: no (B, H, N, N) matrix is kept for
            # backward. Measured on 2 CPU cores, motion-tiny, 32 clips, every patch kept: forward +
            # backward 2.2 s -> 1.4 s (at keep 0.5 no difference).
            mask = None if key_bias is None else key_bias[:, None, None, :]  # (B, 1, 1, N) additive
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, H, N, d)
            return self.proj(out.transpose(1, 2).reshape(B, N, D))  # (B, N, D)
        keys, values = k, v  # (B, H, N, d)
        if null_k is not None:  # the null key and value are key and value N, with their own bias
            keys = torch.cat([k, null_k[None, :, None, :].expand(B, -1, -1, -1)], dim=2)  # (B, H, N+1, d)
            values = torch.cat([v, null_v[None, :, None, :].expand(B, -1, -1, -1)], dim=2)  # (B, H, N+1, d)
            key_bias = torch.cat([k.new_zeros(B, N) if key_bias is None else key_bias, null_bias[:, None]], dim=1)  # (B, N+1)
        logits = (q @ keys.transpose(-2, -1)) * self.scale  # (B, H, N, N[+1])
        if key_bias is not None:
            logits = logits + key_bias[:, None, None, :]  # (B, H, N, N[+1])
        attn = logits.softmax(dim=-1)  # (B, H, N, N[+1])
        out = attn @ values  # (B, H, N, d)
        out = self.proj(out.transpose(1, 2).reshape(B, N, D))  # (B, N, D)
        if return_cls_attn:
            return out, attn[:, :, 0, 1:N].mean(dim=1)  # (B, N-1): class query vs patch keys, head mean
        if return_merge_parts:  # what token merging reads: the map (saliency) and the head-mean keys (ToMe metric)
            return out, attn, k.mean(dim=1)  # (B, N, D), (B, H, N, N[+1]), (B, N, d)
        return out


class GlimpserBlock(nn.Module):
    """TimeSformer divided space-time block with EViT-style top-k (the authors' Glimpser).

    Input (B, 1 + P*T, D) in the authors' token order: class token, then patch n of frame t at
    1 + n*T + t. If `keep` < 1 it keeps, per frame, the ceil(keep*P) patches the class token attends
    to most (head-averaged), in descending order, after the attention residual and before the MLP.
    Returns the tokens (B, 1 + P'*T, D) and the kept patch indices (B, T, P') or None.
    """

    def __init__(self, dim: int, heads: int, mlp_hidden: int, ln_eps: float, drop_path: float,
                 drop_cls_residual: bool) -> None:
        super().__init__()
        self.temporal_norm1 = nn.LayerNorm(dim, eps=ln_eps)
        self.temporal_attn = Attention(dim, heads)
        self.temporal_fc = nn.Linear(dim, dim)
        self.norm1 = nn.LayerNorm(dim, eps=ln_eps)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=ln_eps)
        self.mlp = Mlp(dim, mlp_hidden)
        self.drop_path = DropPath(drop_path)
        self.drop_cls_residual = drop_cls_residual

    def forward(self, x: torch.Tensor, frames: int, keep: float):
        B, L, D = x.shape
        T = frames
        P = (L - 1) // T
        patches = x[:, 1:]  # (B, P*T, D)
        xt = patches.reshape(B * P, T, D)  # (B*P, T, D): each slot attends over its frames
        res = self.drop_path(self.temporal_attn(self.temporal_norm1(xt)))  # (B*P, T, D)
        xt = patches + self.temporal_fc(res.reshape(B, P * T, D))  # (B, P*T, D)

        init_cls = x[:, :1]  # (B, 1, D)
        cls_rep = init_cls.expand(B, T, D).reshape(B * T, 1, D)  # (B*T, 1, D)
        frame_tokens = xt.reshape(B, P, T, D).transpose(1, 2).reshape(B * T, P, D)  # (B*T, P, D)
        xs = torch.cat([cls_rep, frame_tokens], dim=1)  # (B*T, 1+P, D)
        res_s, cls_attn = self.attn(self.norm1(xs), return_cls_attn=True)  # (B*T, 1+P, D), (B*T, P)
        res_s = self.drop_path(res_s)
        cls_mean = res_s[:, 0].reshape(B, T, D).mean(dim=1, keepdim=True)  # (B, 1, D)
        res_p = res_s[:, 1:].reshape(B, T, P, D).transpose(1, 2).reshape(B, P * T, D)  # (B, P*T, D)
        x = torch.cat([init_cls, xt], dim=1) + torch.cat([cls_mean, res_p], dim=1)  # (B, 1+P*T, D)

        index = None
        if keep < 1.0:  # the authors prune (and drop the class residual, Q1) whenever keep_rate != 1
            kept = kept_patches(keep, P)
            index = cls_attn.reshape(B, T, P).topk(kept, dim=-1, largest=True, sorted=True).indices  # (B, T, k)
            frames_x = x[:, 1:].reshape(B, P, T, D).transpose(1, 2)  # (B, T, P, D)
            gathered = frames_x.gather(2, index[..., None].expand(B, T, kept, D))  # (B, T, k, D)
            gathered = gathered.transpose(1, 2).reshape(B, kept * T, D)  # (B, k*T, D): slot = rank in frame
            cls = cls_mean if self.drop_cls_residual else x[:, :1]  # (B, 1, D), Q1
            x = torch.cat([cls, gathered], dim=1)  # (B, 1+k*T, D)
        x = x + self.drop_path(self.mlp(self.norm2(x)))  # (B, N, D)
        return x, index


class JointBlock(nn.Module):
    """Pre-norm ViT block over all (space-time) tokens. The halting score is read by the caller
    from channel 0 of the output (Q5)."""

    def __init__(self, dim: int, heads: int, mlp_hidden: int, ln_eps: float, drop_path: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=ln_eps)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=ln_eps)
        self.mlp = Mlp(dim, mlp_hidden)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, **attn_extras) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), **attn_extras))  # (B, N, D)
        return x + self.drop_path(self.mlp(self.norm2(x)))  # (B, N, D)

    def attend(self, x: torch.Tensor, **attn_extras):
        """The first half of the block (attention residual) and what a merge reads from it:
        (x (B, N, D), attention map (B, H, N, K), head-mean keys (B, N, d))."""
        out, probs, keys = self.attn(self.norm1(x), return_merge_parts=True, **attn_extras)
        return x + self.drop_path(out), probs, keys

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The second half: the MLP residual, on the tokens left after a merge."""
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def null_kv(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.attn.null_kv(self.norm1.bias)


def init_weights(module: nn.Module) -> None:
    """timm ViT init: truncated normal(0.02) linear weights, zero biases, unit LayerNorm."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def drop_path_rates(total: float, depth: int) -> list[float]:
    return [total * i / (depth - 1) for i in range(depth)] if depth > 1 else [0.0]

