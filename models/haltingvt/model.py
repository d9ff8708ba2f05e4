"""HaltingVT (Wu et al., 2024): joint space-time ViT + Glimpser + adaptive token halting.

Two forward paths that give the same logits and token counts:
- `forward_reference`: the authors' dense masked computation (`HaltingVTModel.forward_features` in
  `models/backbones/haltingvt_model.py` of github.com/dun-research/HaltingVT at commit 4830e2a). Halted
  tokens are zeroed and stay in the sequence; every layer processes every token. Used for training
  (the ponder loss needs rho for every token) and as the ground truth of every parity test.
- `forward_compact`: halted tokens are physically removed and the loop stops once every class token
  has halted. Exact thanks to one shared null key/value per sample (what a zeroed token presents:
  LayerNorm(0) = bias) whose logit gets +log(n_halted). Batched videos are padded to the batch's
  largest live count and the padding is masked out of attention. The ONNX graph (export/graph.py)
  mirrors this path op by op. Training-free token merging (merging.py: ToMe, vid-TLDR) is defined on
  this path only: it physically changes the token set, which the dense masked loop has no place for.

Shapes: B batch, T frames, P patches per frame, N tokens, D channels, L joint layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .config import HaltingVTConfig
from .halting import NEG_INF, act_step, halting_score, null_logit_bias
from .merging import MERGE_MODES, merge_counts, merge_mode_index, merge_step, sharpness_saliency
from .layers import ConvStem3d, GlimpserBlock, JointBlock, PatchEmbed, drop_path_rates, init_weights


@dataclass
class HaltingOutput:
    logits: torch.Tensor  # (B, classes)
    motion_logits: torch.Tensor | None  # (B, 2): real vs static clip
    active_tokens: torch.Tensor  # (B, L) int64: tokens each joint layer processed (0 once the class token halted)
    patch_stop_layer: torch.Tensor  # (B, T, P) int64: 0 = dropped by the Glimpser, else 1-based joint layer
    rho: torch.Tensor | None = None  # (B, N) ponder cost per token (reference path only)
    halting_per_layer: torch.Tensor | None = None  # (L,) mean halting score per joint layer (reference path only)


class HaltingVT(nn.Module):
    def __init__(self, cfg: HaltingVTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        D, P, T = cfg.embed_dim, cfg.patches_per_frame, cfg.num_frames
        self.patch_embed = ConvStem3d(cfg) if cfg.stem == "conv3d" else PatchEmbed(cfg.in_chans, D, cfg.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.pos_embed = nn.Parameter(torch.zeros(1, P + 1, D))
        self.time_embed = nn.Parameter(torch.zeros(1, T, D))
        rates = drop_path_rates(cfg.drop_path, cfg.depth)
        glimpser = [GlimpserBlock(D, cfg.num_heads, cfg.mlp_hidden, cfg.ln_eps, rates[i], cfg.quirk_drop_cls_residual)
                    for i in range(cfg.num_glimpser)]
        joint = [JointBlock(D, cfg.num_heads, cfg.mlp_hidden, cfg.ln_eps, rates[cfg.num_glimpser + i])
                 for i in range(cfg.num_joint)]
        self.blocks = nn.ModuleList(glimpser + joint)  # checkpoint keys blocks.0 .. blocks.{depth-1}
        self.norm = nn.LayerNorm(D, eps=cfg.ln_eps)
        self.fc_cls = nn.Linear(D, cfg.num_classes)
        self.fc_motion = nn.Linear(D, 2) if cfg.motion_head else None
        self.apply(init_weights)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        if cfg.embed_init == "sincos":
            self._init_sincos()
        for blk in glimpser:  # the authors zero-init temporal_fc so a fresh Glimpser starts as a spatial block
            nn.init.zeros_(blk.temporal_fc.weight)
            nn.init.zeros_(blk.temporal_fc.bias)

    @torch.no_grad()
    def _init_sincos(self) -> None:
        cfg = self.cfg
        D, g, scale = cfg.embed_dim, cfg.img_size // cfg.patch_size, cfg.embed_init_scale
        rows, cols = torch.meshgrid(torch.arange(g), torch.arange(g), indexing="ij")  # (g, g) each
        space = torch.cat([sincos_table(rows.reshape(-1), D // 2), sincos_table(cols.reshape(-1), D - D // 2)], -1)
        self.pos_embed[0, 1:] = scale * space  # (P, D): half the channels for the row, half for the column
        self.time_embed[0] = scale * sincos_table(torch.arange(cfg.num_frames), D)  # (T, D)

    @property
    def glimpser(self) -> list[GlimpserBlock]:
        return list(self.blocks[: self.cfg.num_glimpser])

    @property
    def joint(self) -> list[JointBlock]:
        return list(self.blocks[self.cfg.num_glimpser:])

    # ---- stages -------------------------------------------------------------------------------

    def normalize(self, video_uint8: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) pixels 0..255 -> the model's input range (Q10: [-1, 1])."""
        mean = torch.tensor(self.cfg.mean, device=video_uint8.device).view(1, 3, 1, 1, 1)
        std = torch.tensor(self.cfg.std, device=video_uint8.device).view(1, 3, 1, 1, 1)
        return (video_uint8.float() - mean) / std  # (B, 3, T, H, W)

    def embed(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) normalised video -> tokens (B, 1 + P*T, D), patch n of frame t at 1 + n*T + t."""
        B, _, T, _, _ = video.shape
        D = self.cfg.embed_dim
        patches = self.patch_embed(video)  # (B, T, P, D), raster order per frame
        P = patches.shape[2]
        patches = patches + self.pos_embed[:, None, 1:]  # (B, T, P, D): position per frame
        patches = patches + self.time_embed[:, :, None, :]  # (B, T, P, D): time on patches only
        patches = patches.transpose(1, 2).reshape(B, P * T, D)  # (B, P*T, D): b (n t) d
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(B, 1, D)  # (B, 1, D): no time embedding
        return torch.cat([cls, patches], dim=1)  # (B, 1+P*T, D)

    def glimpse(self, x: torch.Tensor, keep: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Glimpser blocks. Returns tokens (B, 1 + k*T, D) and each token's original patch id
        t*P + p (B, 1 + k*T), with T*P for the class token."""
        cfg = self.cfg
        B = x.shape[0]
        T, P = cfg.num_frames, cfg.patches_per_frame
        keeps = list(cfg.glimpser_keep[:-1]) + [keep]  # the knob replaces the last block's keep ratio
        grid = torch.arange(T, device=x.device)[None, :] * P + torch.arange(P, device=x.device)[:, None]  # (P, T)
        ids = grid.reshape(1, P * T).expand(B, P * T)  # (B, P*T): id t*P + n in token order n-major
        for blk, k in zip(self.glimpser, keeps):
            x, index = blk(x, T, k)  # (B, N', D), (B, T, k) or None
            if index is not None:
                kept = index.shape[-1]
                frame_ids = torch.arange(T, device=x.device)[None, :, None] * P + index  # (B, T, k)
                ids = frame_ids.transpose(1, 2).reshape(B, kept * T)  # (B, k*T): same order as the tokens
        cls_id = torch.full((B, 1), T * P, dtype=ids.dtype, device=x.device)  # (B, 1)
        return x, torch.cat([cls_id, ids], dim=1)  # (B, N, D), (B, N)

    def head(self, cls_feature: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        feat = self.norm(cls_feature)  # (B, D)
        motion = self.fc_motion(feat) if self.fc_motion is not None else None  # (B, 2)
        return self.fc_cls(feat), motion  # (B, classes)

    def _stop_map(self, stop_flat: torch.Tensor) -> torch.Tensor:
        B = stop_flat.shape[0]
        return stop_flat[:, : -1].reshape(B, self.cfg.num_frames, self.cfg.patches_per_frame)  # (B, T, P)

    def _threshold(self, threshold: float | None) -> float:
        return self.cfg.default_threshold if threshold is None else float(threshold)

    def _keep(self, keep: float | None) -> float:
        return self.cfg.glimpser_keep[-1] if keep is None else float(keep)

    # ---- reference path: the authors' dense masked ACT loop ----------------------------------

    def forward_reference(self, video: torch.Tensor, keep: float | None = None,
                          threshold: float | None = None) -> HaltingOutput:
        cfg = self.cfg
        thr = self._threshold(threshold)
        x, ids = self.glimpse(self.embed(video), self._keep(keep))  # (B, N, D), (B, N)
        B, N, D = x.shape
        c = x.new_zeros(B, N)  # cumulative halting score
        r = x.new_ones(B, N)  # remainder
        rho = x.new_zeros(B, N)  # ponder cost
        mask = torch.ones(B, N, dtype=torch.bool, device=x.device)
        cls_out = x.new_zeros(B, D)
        stop = torch.zeros(B, cfg.num_frames * cfg.patches_per_frame + 1, dtype=torch.long, device=x.device)
        counts, mean_h = [], []
        out = x
        for i, blk in enumerate(self.joint):
            last = i == cfg.num_joint - 1
            out = out * mask[..., None]  # (B, N, D): halted tokens become zero vectors (Q2: still attended)
            if not cfg.quirk_attend_halted:
                key_bias = torch.where(mask, 0.0, NEG_INF)  # (B, N): A-ViT-style masking instead
                z = blk(out, key_bias=key_bias)
            else:
                z = blk(out)  # (B, N, D)
            cls_live = mask[:, :1]  # (B, 1): once the class token halts, the video is done
            counts.append((mask & cls_live).sum(-1))
            stop.scatter_(1, torch.where(mask & cls_live, ids, ids.new_full((), stop.shape[1] - 1)), i + 1)
            h = halting_score(z[..., 0], cfg.halt_scale, cfg.halt_center)  # (B, N)
            if not cfg.quirk_cls_halts and not last:
                h = torch.cat([torch.zeros_like(h[:, :1]), h[:, 1:]], dim=1)  # (B, N)
            mean_h.append(h.mean())
            out = z
            z = z * mask[..., None]  # (B, N, D)
            if last:
                h = torch.ones_like(h)  # forced halting at the last layer (Q4)
            c_new, r_new, weight, reached, still = act_step(c, r, h, mask, thr, last)
            rho = rho + mask.float() + torch.where(reached, r, torch.zeros_like(r))  # steps + remainder
            cls_out = cls_out + z[:, 0] * weight[:, :1]  # (B, D)
            c, r, mask = c_new, r_new, still
        stop[:, -1] = 0
        logits, motion = self.head(cls_out)
        return HaltingOutput(logits, motion, torch.stack(counts, dim=1), self._stop_map(stop), rho, torch.stack(mean_h))

    # ---- compact path: halted tokens removed ---------------------------------------------------

    def forward_compact(self, video: torch.Tensor, keep: float | None = None,
                        threshold: float | None = None, merge_mode: str = "none",
                        merge_ratio: float = 0.0) -> HaltingOutput:
        """`merge_mode` "tome" or "tldr" merges `merge_ratio` of the live patch tokens in every joint
        layer (merging.py); "none" (or ratio 0) runs exactly the ops of the unmerged path."""
        cfg = self.cfg
        thr = self._threshold(threshold)
        mode = MERGE_MODES[merge_mode_index(merge_mode)]
        ratio = float(merge_ratio) if mode != "none" else 0.0
        x, ids = self.glimpse(self.embed(video), self._keep(keep))  # (B, N, D), (B, N)
        B, N, D = x.shape
        dummy = cfg.num_frames * cfg.patches_per_frame  # scatter slot for the class token and padding
        c = x.new_zeros(B, N)
        size = x.new_ones(B, N)  # original tokens each token stands for (merging.py)
        live = torch.ones(B, N, dtype=torch.bool, device=x.device)  # alive and not padding
        n_halted = x.new_zeros(B)
        r_cls = x.new_ones(B)
        cls_out = x.new_zeros(B, D)
        stop = torch.zeros(B, dummy + 1, dtype=torch.long, device=x.device)
        counts = [torch.zeros(B, dtype=torch.long, device=x.device) for _ in range(cfg.num_joint)]
        for i, blk in enumerate(self.joint):
            if not bool(live.any()):
                break  # every class token has halted: nothing left to compute
            last = i == cfg.num_joint - 1
            x, c, ids, live, size = compact(x, c, ids, live, size)  # (B, M, D), then (B, M) each
            counts[i] = live.sum(-1)
            stop.scatter_(1, torch.where(live, ids, ids.new_full((), dummy)), i + 1)
            null_k, null_v = blk.null_kv()  # (H, d) each
            key_bias = torch.where(live, torch.log(size), NEG_INF)  # (B, M): proportional attention; padding never attended
            x, probs, keys = blk.attend(x, key_bias=key_bias, null_k=null_k, null_v=null_v,
                                        null_bias=null_logit_bias(n_halted, cfg.quirk_attend_halted))  # (B, M, D)
            r = merge_counts(counts[i], ratio)  # (B,)
            if bool((r > 0).any()):
                patch = live & (torch.arange(x.shape[1], device=x.device) > 0)
                saliency = sharpness_saliency(probs, patch) if mode == "tldr" else None
                metric = x if mode == "tldr" else keys
                x, size, c, ids, live = merge_step(x, size, c, ids, live, metric, r, saliency)
                # The merged-away tokens leave before the MLP: it runs on M - r tokens, as flops.py counts.
                x, c, ids, live, size = compact(x, c, ids, live, size)  # (B, M', D), then (B, M') each
            z = blk.feed_forward(x)  # (B, M', D)
            h = halting_score(z[..., 0], cfg.halt_scale, cfg.halt_center)  # (B, M')
            if not cfg.quirk_cls_halts and not last:
                h = torch.cat([torch.zeros_like(h[:, :1]), h[:, 1:]], dim=1)
            r = torch.cat([r_cls[:, None], torch.zeros_like(h[:, 1:])], dim=1)  # (B, M'): only the class token's R matters
            c, r, weight, _, still = act_step(c, r, h, live, thr, last)
            cls_out = cls_out + z[:, 0] * weight[:, :1]  # (B, D)
            r_cls = r[:, 0]
            n_halted = n_halted + torch.where(live & ~still, size, torch.zeros_like(size)).sum(-1)  # halted mass
            live = still & still[:, :1]  # a video whose class token halted drops all its tokens
            x = z
        stop[:, -1] = 0
        logits, motion = self.head(cls_out)
        return HaltingOutput(logits, motion, torch.stack(counts, dim=1), self._stop_map(stop))

    forward = forward_reference


def sincos_table(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer sine-cosine table: positions (N,) -> (N, dim), wavelengths 2pi .. 2pi * 10^4."""
    freqs = 1e4 ** (-torch.arange(dim // 2, dtype=torch.float32) * 2 / dim)  # (dim/2,)
    angles = positions.float()[:, None] * freqs[None, :]  # (N, dim/2)
    table = torch.cat([angles.sin(), angles.cos()], dim=-1)  # (N, 2*(dim//2))
    return torch.nn.functional.pad(table, (0, dim - table.shape[1]))  # (N, dim)


def compact(x: torch.Tensor, c: torch.Tensor, ids: torch.Tensor, live: torch.Tensor, size: torch.Tensor):
    """Moves each sample's live tokens to the front (stable) and cuts the token axis to the batch's
    largest live count (at least 1). The class token, when live, stays at position 0."""
    B, N = live.shape
    M = max(int(live.sum(-1).max()), 1)
    pos = torch.arange(N, device=x.device).expand(B, N)  # (B, N)
    key = torch.where(live, pos, pos + N).float()  # (B, N): live tokens first, order kept
    order = key.topk(M, dim=-1, largest=False, sorted=True).indices  # (B, M)
    x = x.gather(1, order[..., None].expand(B, M, x.shape[-1]))  # (B, M, D)
    return x, c.gather(1, order), ids.gather(1, order), live.gather(1, order), size.gather(1, order)
