"""Training-free token merging inside the joint layers, as small pure functions shared by the compact
path (model.forward_compact) and, mirrored op by op, the ONNX graph (export/graph.py). The counts
and costs the TypeScript side needs are mirrored in src/engine/flops.ts; golden: golden/merging.json.

Two modes, picked per request (`merge_mode`), both at `merge_ratio` of the live patch tokens in every
joint layer, between attention and MLP (where ToMe and vid-TLDR merge):
- "tome" (Bolya et al.; video: Pollard et al.): bipartite soft matching on the attention keys averaged
  over heads; sources are averaged into their destinations with size tracking.
- "tldr" (vid-TLDR, Choi et al.): the same matching on the hidden state, but each source's content and
  mass are weighted by its saliency (attention sharpness, sum a log a over keys, min-max normalised,
  below-mean = background = 0), so background sources are dropped rather than averaged in. Saliency
  comes from the merging layer's own attention (with the size bias: sizes are 1 at the first joint
  layer, where the first merge happens), including the null key's column.
Merged tokens carry a size (how many original tokens they stand for, saliency-weighted in "tldr");
every later attention adds log(size) to their key logits (proportional attention), which is exact
for duplicated tokens and what ToMe prescribes for supervised models used off the shelf.

What merging means for the other tokens:
- The class token is never merged: neither a source nor a destination.
- Halted tokens are no longer in the sequence (the compact path replaces them by the null key), so
  they are never merged. When a merged token halts it becomes `size` zeroed tokens, so the null key's
  bias log(n_halted) counts halted *mass* (equal to the count while nothing is merged).
- Padding (tokens of another, longer video in the batch) is never matched.
- A merged-away token's cumulative halting score is averaged into its destination like its content
  (size-weighted); its patch stops at the layer that merged it (patch_stop_layer).

Token layout after a merge: the destination set (even positions, class token first) then the source
set (odd positions) with the merged-away ones marked not live; forward_compact (and the graph) drop
them before the MLP.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .halting import NEG_INF

MERGE_MODES = ("none", "tome", "tldr")  # graph input merge_mode is the index in this tuple
MAX_MERGE_RATIO = 0.5  # knob maximum: bipartite matching can remove at most half the patch tokens per layer
NOT_A_SOURCE = 2.0 * NEG_INF  # sorts after every real similarity (>= -1) and after "no destination" (NEG_INF)


def merge_mode_index(mode: str) -> int:
    if mode not in MERGE_MODES:
        raise ValueError(f"merge_mode must be one of {', '.join(MERGE_MODES)}, got {mode!r}")
    return MERGE_MODES.index(mode)


def merge_count(live_tokens: int, ratio: float) -> int:
    """Tokens one joint layer merges away when `live_tokens` (class token included) enter it:
    floor(ratio * patches) computed in float32 like the graph, at most half the patches (what
    bipartite matching allows), 0 for an empty layer."""
    patches = max(live_tokens - 1, 0)
    r = math.floor(float(np.float32(ratio) * np.float32(patches)))
    return max(min(r, patches // 2), 0)


def merge_counts(live: torch.Tensor, ratio: float) -> torch.Tensor:
    """merge_count for a (B,) tensor of live counts, as the graph computes it."""
    patches = (live - 1).clamp(min=0)
    r = torch.floor(torch.tensor(ratio, dtype=torch.float32) * patches.to(torch.float32)).to(torch.long)
    return torch.minimum(r, patches // 2).clamp(min=0)


def merge_macs(live_tokens: int, mode: str, ratio: float, dim: int, head_dim: int) -> int:
    """Multiply-adds of one merge step (paper convention) when `live_tokens` enter the layer, 0 when
    it merges nothing (mode "none", or a ratio that rounds to 0 tokens):
    the cosine similarity of every source candidate with every destination candidate (ToMe's cost:
    |A| * |B| * metric dim; the metric is the head-averaged keys for "tome", the hidden state for
    "tldr"), plus for "tldr" the sharpness sum a*log a over each row of the attention map (N * (N+1),
    the null key included). Argmax, sort and the scatter of r tokens are not multiply-adds."""
    if mode == "none" or merge_count(live_tokens, ratio) == 0:
        return 0
    patches = live_tokens - 1
    sources, dests = (patches + 1) // 2, patches // 2
    if mode == "tome":
        return sources * dests * head_dim
    return sources * dests * dim + live_tokens * (live_tokens + 1)


def sharpness_saliency(probs: torch.Tensor, patch: torch.Tensor) -> torch.Tensor:
    """vid-TLDR's saliency weights from an attention map probs (B, H, M, K) (rows: queries; keys
    may include extra columns such as the null key) for the candidate tokens `patch` (B, M) bool.

    Sharpness s = sum_k a log a of the head-averaged row (negative entropy: a focused query scores
    high); min-max normalised over the candidates; those below the mean are background (weight 0);
    the rest (s - mean) / max(s - mean), in [0, 1]. Non-candidates get 0."""
    a = probs.mean(dim=1)  # (B, M, K)
    s = (a * torch.log(a.clamp(min=1e-30))).sum(-1)  # (B, M): 0 * log(tiny) = 0 for masked keys
    big = torch.full_like(s, 3e38)
    lo = torch.where(patch, s, big).amin(-1, keepdim=True)  # (B, 1)
    hi = torch.where(patch, s, -big).amax(-1, keepdim=True)
    norm = (s - lo) / (hi - lo).clamp(min=1e-12)  # (B, M) in [0, 1] on candidates
    count = patch.sum(-1, keepdim=True).clamp(min=1).to(s.dtype)
    mean = torch.where(patch, norm, torch.zeros_like(norm)).sum(-1, keepdim=True) / count  # (B, 1)
    centred = norm - mean
    top = torch.where(patch, centred, torch.zeros_like(centred)).amax(-1, keepdim=True).clamp(min=1e-12)
    return torch.where(patch & (centred >= 0), centred / top, torch.zeros_like(centred))  # (B, M)


def match(metric: torch.Tensor, patch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bipartite soft matching: the odd positions (A, source candidates) against the even positions
    (B, destinations; position 0 is the class token) by cosine similarity of `metric` (B, M, m).
    Returns each A token's best similarity (B, |A|) (NOT_A_SOURCE for tokens that may not merge:
    the class token, padding) and its destination index in B (B, |A|); ties pick the first."""
    unit = metric / metric.norm(dim=-1, keepdim=True).clamp(min=1e-12)  # (B, M, m)
    scores = unit[:, 1::2] @ unit[:, 0::2].transpose(1, 2)  # (B, |A|, |B|)
    scores = scores.masked_fill(~patch[:, None, 0::2], NEG_INF)
    best, dest = scores.max(dim=-1)  # (B, |A|)
    return torch.where(patch[:, 1::2], best, torch.full_like(best, NOT_A_SOURCE)), dest


def pick_sources(best: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """The r (B,) best-matched A tokens of each video (B, |A|) bool: rank by similarity, descending,
    ties to the lower index (ONNX TopK's rule)."""
    order = torch.sort(best, dim=-1, descending=True, stable=True).indices  # (B, |A|)
    ranks = torch.empty_like(order).scatter_(1, order, torch.arange(order.shape[1]).expand_as(order))
    return ranks < r[:, None]


def merge_step(x: torch.Tensor, size: torch.Tensor, c: torch.Tensor, ids: torch.Tensor, live: torch.Tensor,
               metric: torch.Tensor, r: torch.Tensor, saliency: torch.Tensor | None):
    """One merge of r (B,) tokens per video. x (B, M, D); size, c (B, M) float; ids (B, M); live (B, M)
    bool with the live tokens first (compacted) and the class token at 0; metric (B, M, m); saliency
    (B, M) or None (ToMe: every source counts fully). Returns (x, size, c, ids, live) in the layout
    [B set, A set] with the merged-away A tokens no longer live."""
    B, M, D = x.shape
    patch = live & (torch.arange(M, device=x.device) > 0)  # (B, M): the class token never merges
    best, dest = match(metric, patch)  # (B, |A|)
    src = pick_sources(best, r)  # (B, |A|)
    weight = size[:, 1::2] if saliency is None else size[:, 1::2] * saliency[:, 1::2]  # (B, |A|): mass it brings
    mass = torch.where(src, weight, torch.zeros_like(weight))  # (B, |A|)
    add_x = torch.zeros_like(x[:, 0::2]).scatter_add(1, dest[..., None].expand(B, dest.shape[1], D),
                                                     x[:, 1::2] * mass[..., None])  # (B, |B|, D)
    add_m = torch.zeros_like(size[:, 0::2]).scatter_add(1, dest, mass)  # (B, |B|)
    add_c = torch.zeros_like(c[:, 0::2]).scatter_add(1, dest, c[:, 1::2] * mass)
    size_b = size[:, 0::2] + add_m  # (B, |B|): >= 1, every size starts at 1 and only grows
    x_b = (x[:, 0::2] * size[:, 0::2, None] + add_x) / size_b[..., None]  # (B, |B|, D)
    c_b = (c[:, 0::2] * size[:, 0::2] + add_c) / size_b
    cat = lambda even, odd: torch.cat([even, odd], dim=1)  # noqa: E731
    return (cat(x_b, x[:, 1::2]), cat(size_b, size[:, 1::2]), cat(c_b, c[:, 1::2]),
            cat(ids[:, 0::2], ids[:, 1::2]), cat(live[:, 0::2], live[:, 1::2] & ~src))
