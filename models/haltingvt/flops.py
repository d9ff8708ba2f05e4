"""FLOPs accounting in the paper's convention: one multiply-add = one FLOP (Wu et al., 2024,
"HaltingVT", arXiv 2401.04975). The authors' code (github.com/dun-research/HaltingVT at commit
4830e2a) holds no FLOP counter. This convention gives DeiT-S its usual 4.6 G; at 2 FLOPs per
multiply-add, what a keep-0.3 model spends before its first halting decision would already exceed
the paper's 9.9 GFLOPs.

The formula is written once in docs/contracts.md and mirrored in src/engine/flops.ts; both are checked
against golden/flops.json. LayerNorm, softmax, GELU and the sigmoid are ignored (< 0.2%), and the
null key of the compact path (one extra key per layer) is not counted: the paper counts n^2.

Token merging (merging.py) in a joint layer: attention and its projections run on the n tokens that
enter, the MLP on the n - r left after the merge, and the merge itself costs merging.merge_macs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .config import HaltingVTConfig, kept_patches, stem_stages
from .merging import merge_count, merge_macs


@dataclass(frozen=True)
class FlopsConstants:
    frames: int
    patches: int
    patch_dim: int  # in_chans * patch_size^2
    dim: int
    mlp_hidden: int
    glimpser_blocks: int
    joint_blocks: int
    classes: int
    motion_classes: int
    embed_macs: int  # the whole patch embedding (stem), per video
    heads: int = 0  # attention heads (ToMe's metric is D / heads wide); 0 in manifests written before merging

    @classmethod
    def of(cls, cfg: HaltingVTConfig) -> "FlopsConstants":
        return cls(cfg.num_frames, cfg.patches_per_frame, cfg.in_chans * cfg.patch_size ** 2, cfg.embed_dim,
                   cfg.mlp_hidden, cfg.num_glimpser, cfg.num_joint, cfg.num_classes, 2 if cfg.motion_head else 0,
                   stem_macs(cfg), cfg.num_heads)

    @classmethod
    def from_dict(cls, d: dict) -> "FlopsConstants":
        """From a manifest's `flops`; manifests written before the conv3d stem lack embed_macs and
        mean the per-frame patch projection."""
        return cls(**{"embed_macs": d["frames"] * d["patches"] * d["patch_dim"] * d["dim"]} | d)

    def to_dict(self) -> dict:
        return asdict(self)


def stem_macs(cfg: HaltingVTConfig) -> int:
    """Patch embedding MACs per video. "patch": one (patch_dim -> D) projection per patch and frame.
    "conv3d": each stage i costs T * side_i^2 * C_out * C_in * 3 * k_i^2 (temporal kernel 3, spatial
    kernel k_i; zero padding is counted like any tap, the convention of the attention terms)."""
    T, D = cfg.num_frames, cfg.embed_dim
    if cfg.stem == "patch":
        return T * cfg.patches_per_frame * cfg.in_chans * cfg.patch_size ** 2 * D
    side, total = cfg.img_size, 0
    for st in stem_stages(cfg):
        side //= st.stride
        total += T * side * side * st.c_out * st.c_in * 3 * st.kernel ** 2
    return total


def embed_macs(k: FlopsConstants) -> int:
    return k.embed_macs


def glimpser_macs(k: FlopsConstants, kept: int) -> int:
    """One divided space-time block whose MLP runs on the class token + `kept` patches per frame."""
    T, P, D, H = k.frames, k.patches, k.dim, k.mlp_hidden
    temporal = T * P * 5 * D * D + P * 2 * T * T * D  # qkv (3D^2) + proj + temporal_fc; QK^T + AV
    spatial = T * (P + 1) * 4 * D * D + T * 2 * (P + 1) ** 2 * D  # qkv + proj; QK^T + AV per frame
    mlp = (1 + T * kept) * 2 * D * H
    return temporal + spatial + mlp


def joint_macs(k: FlopsConstants, tokens: int, mlp_tokens: int | None = None) -> int:
    """One joint block over `tokens` active tokens: qkv, proj, attention (QK^T and AV), and the MLP
    on `mlp_tokens` (fewer than `tokens` when the layer merged some; default: all of them)."""
    mlp = tokens if mlp_tokens is None else mlp_tokens
    return tokens * 4 * k.dim * k.dim + 2 * tokens * tokens * k.dim + mlp * 2 * k.dim * k.mlp_hidden


def merged_joint_macs(k: FlopsConstants, tokens: int, merge_mode: str, merge_ratio: float) -> int:
    """One joint block that merges (merging.py): its reduced MLP plus the merge's own cost."""
    if merge_mode == "none":
        return joint_macs(k, tokens)
    r = merge_count(tokens, merge_ratio)
    return joint_macs(k, tokens, tokens - r) + merge_macs(tokens, merge_mode, merge_ratio, k.dim, k.dim // max(k.heads, 1))


def head_macs(k: FlopsConstants) -> int:
    return k.dim * (k.classes + k.motion_classes)


def video_macs(k: FlopsConstants, kept: int, active_tokens: list[int], merge_mode: str = "none",
               merge_ratio: float = 0.0) -> int:
    """Total multiply-adds for one video: `kept` patches per frame after the Glimpser, and the
    active-token count of every joint layer (0 after the class token halted), merging as requested."""
    assert len(active_tokens) == k.joint_blocks, f"need {k.joint_blocks} layer counts, got {len(active_tokens)}"
    glimpser = sum(glimpser_macs(k, k.patches) for _ in range(k.glimpser_blocks - 1)) + glimpser_macs(k, kept)
    joint = sum(merged_joint_macs(k, n, merge_mode, merge_ratio) for n in active_tokens)
    return embed_macs(k) + glimpser + joint + head_macs(k)


def glimpser_only_tokens(k: FlopsConstants, kept: int) -> list[int]:
    """Active tokens per joint layer when nothing halts."""
    return [1 + k.frames * kept] * k.joint_blocks


def gflops(cfg: HaltingVTConfig, keep: float = 1.0, active_tokens: list[int] | None = None) -> float:
    k = FlopsConstants.of(cfg)
    kept = kept_patches(keep, k.patches) if keep < 1.0 else k.patches
    tokens = glimpser_only_tokens(k, kept) if active_tokens is None else active_tokens
    return video_macs(k, kept, tokens) / 1e9


def per_layer_report(cfg: HaltingVTConfig, keep: float, active_tokens: list[int] | None = None) -> list[tuple[str, int, float]]:
    """(stage, tokens, GFLOPs) rows for the CLI."""
    k = FlopsConstants.of(cfg)
    kept = kept_patches(keep, k.patches) if keep < 1.0 else k.patches
    tokens = glimpser_only_tokens(k, kept) if active_tokens is None else active_tokens
    rows = [("patch_embed", k.frames * k.patches, embed_macs(k) / 1e9)]
    for b in range(k.glimpser_blocks):
        kb = kept if b == k.glimpser_blocks - 1 else k.patches
        rows.append((f"glimpser.{b}", 1 + k.frames * kb, glimpser_macs(k, kb) / 1e9))
    rows += [(f"joint.{i}", n, joint_macs(k, n) / 1e9) for i, n in enumerate(tokens)]
    rows.append(("head", 1, head_macs(k) / 1e9))
    return rows
