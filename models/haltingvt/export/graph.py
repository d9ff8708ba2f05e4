"""The ONNX graph of HaltingVT's compact path: embedding, Glimpser, the whole halting loop and the
head in one graph, so no token tensor makes a round trip through the host between layers.

It mirrors `HaltingVT.forward_compact` stage by stage. Between joint layers the live tokens of each
video are moved to the front (TopK on a position key) and the token axis is cut to the batch's
largest live count; padding is masked out of attention, so a batched video gives its unbatched
result. Each joint layer sits in an `If` that skips it once every class token has halted.

Token merging (merging.py) sits between attention and MLP of every joint layer, inside its own If
that only runs when some video merges at least one token: with merge_mode 0 ("none") or a ratio that
rounds to no token the graph runs exactly the ops it ran before merging existed.

Inputs: video float32 (B, 3, T, S, S), keep_ratio float32 (), halt_threshold float32 (),
merge_mode int64 () (index in merging.MERGE_MODES), merge_ratio float32 ().
Outputs: logits (B, C), active_tokens int64 (B, L), patch_stop_layer int64 (B, T, P).
"""

from __future__ import annotations

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper

from ..config import HaltingVTConfig
from ..halting import NEG_INF
from ..layers import Attention, GlimpserBlock, JointBlock, Mlp
from ..merging import MERGE_MODES, NOT_A_SOURCE
from ..model import HaltingVT
from .builder import INT64_MAX, Builder

OPSET = 17
# Model metadata: the query rows of every qkv projection carry the softmax scale (attention() folds it
# in), so reading the weights back (read_back.py) divides it out.
QUERY_SCALED = "haltingvt.qkv_query_scaled"
F32 = TensorProto.FLOAT
I64 = TensorProto.INT64
BOOL = TensorProto.BOOL

INPUTS = ("video", "keep_ratio", "halt_threshold", "merge_mode", "merge_ratio")
OUTPUTS = ("logits", "active_tokens", "patch_stop_layer")
# What each joint layer's If carries to the next layer (name -> element type), in branch-output order.
STATE = {"x": F32, "c": F32, "ids": I64, "live": BOOL, "n_halted": F32, "r_cls": F32, "cls_out": F32, "stop": I64,
         "size": F32}
LAYER_OUTPUTS = {**STATE, "count": I64}  # the state, and the tokens the layer processed per video
MERGED = {"x": F32, "size": F32, "c": F32, "ids": I64, "live": BOOL}  # what a merge changes (merge_if_any's If)


def np_(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().float().numpy()


def build_graph(model: HaltingVT) -> onnx.ModelProto:
    cfg = model.cfg
    g = Builder()
    x = embed(g, model, "video")  # (B, 1+P*T, D)
    x, ids = glimpse(g, model, x, "keep_ratio")  # (B, N, D), (B, N)
    state = initial_state(g, cfg, x, ids)
    merge = merge_inputs(g, "merge_mode", "merge_ratio")
    H = cfg.num_heads
    null_rows = g.concat(g.op("Shape", state["n_halted"]), g.const([H, 1, cfg.embed_dim // H]), axis=0)  # [B, H, 1, d]: every layer's
    counts = []
    for i, blk in enumerate(model.joint):
        state, count = joint_layer(g, cfg, blk, i, state, "halt_threshold", merge, null_rows)
        counts.append(g.unsqueeze(count, [1]))  # (B, 1)
    feat = g.layer_norm(state["cls_out"], np_(model.norm.weight), np_(model.norm.bias), cfg.ln_eps, "norm")
    g.op("Identity", g.linear(feat, np_(model.fc_cls.weight), np_(model.fc_cls.bias), "fc_cls"), out="logits")
    g.op("Concat", *counts, axis=1, out="active_tokens")
    T, P = cfg.num_frames, cfg.patches_per_frame
    g.op("Identity", g.reshape(g.slice(state["stop"], 0, T * P, 1), [-1, T, P]), out="patch_stop_layer")

    S = cfg.img_size
    graph = helper.make_graph(
        g.nodes, "haltingvt",
        inputs=[helper.make_tensor_value_info("video", F32, ["batch", 3, T, S, S]),
                helper.make_tensor_value_info("keep_ratio", F32, []),
                helper.make_tensor_value_info("halt_threshold", F32, []),
                helper.make_tensor_value_info("merge_mode", I64, []),
                helper.make_tensor_value_info("merge_ratio", F32, [])],
        outputs=[helper.make_tensor_value_info("logits", F32, ["batch", cfg.num_classes]),
                 helper.make_tensor_value_info("active_tokens", I64, ["batch", cfg.num_joint]),
                 helper.make_tensor_value_info("patch_stop_layer", I64, ["batch", T, P])],
        initializer=g.initializers,
    )
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                   producer_name="haltingvt")
    onnx_model.ir_version = 8  # readable by every ONNX Runtime since 1.11
    helper.set_model_props(onnx_model, {QUERY_SCALED: "true"})
    onnx.checker.check_model(onnx_model, full_check=True)
    return onnx_model


# ---- stages ------------------------------------------------------------------------------------

def embed(g: Builder, model: HaltingVT, video: str) -> str:
    cfg = model.cfg
    T, D, P = cfg.num_frames, cfg.embed_dim, cfg.patches_per_frame
    patches = conv3d_stem(g, model, video) if cfg.stem == "conv3d" else patch_stem(g, model, video)  # (B, T, P, D)
    patches = g.op("Add", patches, g.weight(np_(model.pos_embed[0, 1:]), "pos_embed"))  # (B, T, P, D)
    patches = g.op("Add", patches, g.weight(np_(model.time_embed[0])[:, None, :], "time_embed"))  # (B, T, P, D)
    patches = g.reshape(g.transpose(patches, [0, 2, 1, 3]), [-1, P * T, D])  # (B, P*T, D): b (n t) d
    cls = np_(model.cls_token + model.pos_embed[:, :1])  # (1, 1, D)
    batch = g.dim(patches, 0)  # [B]
    cls = g.op("Expand", g.weight(cls, "cls_token"), g.concat(batch, g.const([1, D]), axis=0))  # (B, 1, D)
    return g.concat(cls, patches, axis=1)  # (B, 1+P*T, D)


def patch_stem(g: Builder, model: HaltingVT, video: str) -> str:
    cfg = model.cfg
    T, D, S, P = cfg.num_frames, cfg.embed_dim, cfg.img_size, cfg.patches_per_frame
    frames = g.reshape(g.transpose(video, [0, 2, 1, 3, 4]), [-1, 3, S, S])  # (B*T, 3, S, S)
    conv = g.op("Conv", frames, g.weight(np_(model.patch_embed.proj.weight), "patch_embed.weight"),
                g.weight(np_(model.patch_embed.proj.bias), "patch_embed.bias"),
                kernel_shape=[cfg.patch_size] * 2, strides=[cfg.patch_size] * 2, hint="patch_embed")  # (B*T, D, h, w)
    patches = g.transpose(g.reshape(conv, [0, D, P]), [0, 2, 1])  # (B*T, P, D)
    return g.reshape(patches, [-1, T, P, D])  # (B, T, P, D)


def conv3d_stem(g: Builder, model: HaltingVT, video: str) -> str:
    cfg = model.cfg
    T, D, P = cfg.num_frames, cfg.embed_dim, cfg.patches_per_frame
    x = video  # (B, 3, T, S, S)
    for index, layer in enumerate(model.patch_embed.convs):  # initializers named by module path
        if isinstance(layer, torch.nn.ReLU):
            x = g.op("Relu", x)  # (B, C_i, T, S_i, S_i)
            continue
        name, pads = f"patch_embed.convs.{index}", list(layer.padding)
        x = g.op("Conv", x, g.weight(np_(layer.weight), f"{name}.weight"), g.weight(np_(layer.bias), f"{name}.bias"),
                 kernel_shape=list(layer.kernel_size), strides=list(layer.stride), pads=pads + pads,
                 hint=name)  # (B, C_i, T, S_i, S_i)
    x = g.reshape(x, [0, D, T, P])  # (B, D, T, P)
    return g.transpose(x, [0, 2, 3, 1])  # (B, T, P, D)


def attention(g: Builder, attn: Attention, x: str, dim: int, hint: str, extras: dict | None = None,
              cls_attn: bool = False, merge_parts: bool = False):
    """Multi-head attention on x (B', N, D) as in `layers.Attention`. `extras` makes it a joint layer's:
    key_bias (B', 1, 1, N) and, as key and value N, the null key and value ((1, H, 1, d) each, expanded
    to `null_rows` = [B', H, 1, d]) with its bias (B', 1, 1, 1). `merge_parts` also returns the map
    (B', H, N, N+1) and the head-mean keys (B', N, d)."""
    H = attn.heads
    d = dim // H
    # The softmax scale goes into the query rows of the projection: (s q) k^T = s (q k^T), without a
    # pass over the N x N logits.
    w, b = np_(attn.qkv.weight).copy(), np_(attn.qkv.bias).copy()  # (3D, D), (3D,)
    w[:dim] *= attn.scale
    b[:dim] *= attn.scale
    qkv = g.linear(x, w, b, f"{hint}.qkv")  # (B', N, 3D)
    qkv = g.transpose(g.reshape(qkv, [0, 0, 3, H, d]), [2, 0, 3, 1, 4])  # (3, B', H, N, d)
    q, k, v = (g.squeeze(t, [0]) for t in g.op("Split", qkv, g.const([1, 1, 1]), axis=0, outputs=3))
    keys, values = k, v  # (B', H, N, d)
    if extras is not None:
        # One more key and value row instead of a separate null logit: measured 6-22% less time per
        # attention than concatenating a null column onto the logits and splitting the map again.
        keys = g.concat(k, g.op("Expand", extras["null_k"], extras["null_rows"]), axis=2)  # (B', H, N+1, d)
        values = g.concat(v, g.op("Expand", extras["null_v"], extras["null_rows"]), axis=2)  # (B', H, N+1, d)
    logits = g.op("MatMul", q, g.transpose(keys, [0, 1, 3, 2]))  # (B', H, N, N[+1])
    if extras is not None:
        logits = g.op("Add", logits, g.concat(extras["key_bias"], extras["null_bias"], axis=-1))  # (B', H, N, N+1)
    probs = g.op("Softmax", logits, axis=-1)  # (B', H, N, N[+1])
    out = g.op("MatMul", probs, values)  # (B', H, N, d)
    out = g.reshape(g.transpose(out, [0, 2, 1, 3]), [0, 0, dim])  # (B', N, D)
    out = g.linear(out, np_(attn.proj.weight), np_(attn.proj.bias), f"{hint}.proj")  # (B', N, D)
    if merge_parts:
        return out, probs, g.op("ReduceMean", k, axes=[1], keepdims=0)  # (B', N, d)
    if not cls_attn:
        return out
    first_row = g.slice(g.slice(probs, 0, 1, 2), 1, INT64_MAX, 3)  # (B', H, 1, N-1)
    return out, g.op("ReduceMean", first_row, axes=[1, 2], keepdims=0)  # (B', N-1): head mean


def mlp(g: Builder, m: Mlp, x: str, hint: str) -> str:
    h = g.gelu(g.linear(x, np_(m.fc1.weight), np_(m.fc1.bias), f"{hint}.fc1"))
    return g.linear(h, np_(m.fc2.weight), np_(m.fc2.bias), f"{hint}.fc2")


def ln(g: Builder, norm: torch.nn.LayerNorm, x: str, hint: str) -> str:
    return g.layer_norm(x, np_(norm.weight), np_(norm.bias), norm.eps, hint)


def glimpser_block(g: Builder, cfg: HaltingVTConfig, blk: GlimpserBlock, x: str, keep: str | None, hint: str):
    """One divided block; `keep` (a scalar graph value) makes it prune. Returns (x, index (B, T, k) or None)."""
    T, P, D = cfg.num_frames, cfg.patches_per_frame, cfg.embed_dim
    patches = g.slice(x, 1, INT64_MAX, 1)  # (B, P*T, D)
    xt = g.reshape(patches, [-1, T, D])  # (B*P, T, D)
    res = attention(g, blk.temporal_attn, ln(g, blk.temporal_norm1, xt, f"{hint}.temporal_norm1"), D, f"{hint}.temporal_attn")
    res = g.linear(g.reshape(res, [-1, P * T, D]), np_(blk.temporal_fc.weight), np_(blk.temporal_fc.bias), f"{hint}.temporal_fc")
    xt = g.op("Add", patches, res)  # (B, P*T, D)

    init_cls = g.slice(x, 0, 1, 1)  # (B, 1, D)
    cls_rep = g.reshape(g.op("Tile", init_cls, g.const([1, T, 1])), [-1, 1, D])  # (B*T, 1, D)
    frame_tokens = g.reshape(g.transpose(g.reshape(xt, [-1, P, T, D]), [0, 2, 1, 3]), [-1, P, D])  # (B*T, P, D)
    xs = ln(g, blk.norm1, g.concat(cls_rep, frame_tokens, axis=1), f"{hint}.norm1")  # (B*T, 1+P, D)
    res_s, score = attention(g, blk.attn, xs, D, f"{hint}.attn", cls_attn=True)  # (B*T, 1+P, D), (B*T, P)
    cls_mean = g.op("ReduceMean", g.reshape(g.slice(res_s, 0, 1, 1), [-1, T, D]), axes=[1], keepdims=1)  # (B, 1, D)
    res_p = g.reshape(g.transpose(g.reshape(g.slice(res_s, 1, INT64_MAX, 1), [-1, T, P, D]), [0, 2, 1, 3]), [-1, P * T, D])
    x = g.op("Add", g.concat(init_cls, xt, axis=1), g.concat(cls_mean, res_p, axis=1))  # (B, 1+P*T, D)

    index = None
    if keep is not None:
        kept = g.op("Cast", g.op("Ceil", g.op("Mul", keep, g.const(float(P), np.float32))), to=I64)
        kept = g.reshape(g.op("Clip", kept, g.const(1), g.const(P)), [1])  # [k] = ceil(keep * P) in [1, P]
        prunes = g.op("Less", keep, g.const(1.0, np.float32))  # the authors prune whenever keep != 1
        # Keeping every patch keeps them in raster order, as the PyTorch model does (it skips the
        # gather): attention does not care, but the bipartite split of token merging does.
        raster = g.const(-np.arange(P, dtype=np.float32), np.float32)  # (P,): TopK of it = 0, 1, ..., P-1
        score = g.where(prunes, score, raster)  # (B*T, P)
        index = g.op("TopK", g.reshape(score, [-1, T, P]), kept, axis=-1, largest=1, sorted=1, outputs=2)[1]  # (B, T, k)
        frames_x = g.transpose(g.reshape(g.slice(x, 1, INT64_MAX, 1), [-1, P, T, D]), [0, 2, 1, 3])  # (B, T, P, D)
        expanded = g.op("Expand", g.unsqueeze(index, [3]), g.concat(g.op("Shape", index), g.const([D]), axis=0))
        gathered = g.op("GatherElements", frames_x, expanded, axis=2)  # (B, T, k, D)
        gathered = g.reshape(g.transpose(gathered, [0, 2, 1, 3]), [0, -1, D])  # (B, k*T, D)
        residual_cls = g.slice(x, 0, 1, 1)  # init_cls + cls_mean
        cls = g.where(prunes, cls_mean, residual_cls) if cfg.quirk_drop_cls_residual else residual_cls  # Q1
        x = g.concat(cls, gathered, axis=1)  # (B, 1+k*T, D)
    x = g.op("Add", x, mlp(g, blk.mlp, ln(g, blk.norm2, x, f"{hint}.norm2"), f"{hint}.mlp"))
    return x, index


def glimpse(g: Builder, model: HaltingVT, x: str, keep: str) -> tuple[str, str]:
    cfg = model.cfg
    T, P = cfg.num_frames, cfg.patches_per_frame
    index = None
    last = cfg.num_glimpser - 1
    for b, blk in enumerate(model.glimpser):
        x, idx = glimpser_block(g, cfg, blk, x, keep if b == last else None, f"glimpser{b}")
        index = idx if idx is not None else index
    ids = g.op("Add", index, g.const(np.arange(T).reshape(1, T, 1) * P))  # (B, T, k): id t*P + p
    ids = g.reshape(g.transpose(ids, [0, 2, 1]), [0, -1])  # (B, k*T), token order
    cls_id = g.op("Expand", g.const([[T * P]]), g.concat(g.dim(ids, 0), g.const([1]), axis=0))  # (B, 1)
    return x, g.concat(cls_id, ids, axis=1)  # (B, N, D), (B, N)


def initial_state(g: Builder, cfg: HaltingVTConfig, x: str, ids: str) -> dict[str, str]:
    tokens = g.op("Shape", ids)  # [B, N]
    batch = g.dim(ids, 0)  # [B]
    return {
        "x": x,
        "c": g.full_like_dims(tokens, 0.0, np.float32),
        "ids": ids,
        "live": g.full_like_dims(tokens, True, np.bool_),
        "n_halted": g.full_like_dims(batch, 0.0, np.float32),
        "r_cls": g.full_like_dims(batch, 1.0, np.float32),
        "cls_out": g.full_like_dims(g.concat(batch, g.const([cfg.embed_dim]), axis=0), 0.0, np.float32),
        "stop": g.full_like_dims(g.concat(batch, g.const([cfg.num_frames * cfg.patches_per_frame + 1]), axis=0), 0, np.int64),
        "size": g.full_like_dims(tokens, 1.0, np.float32),
    }


def merge_inputs(g: Builder, mode: str, ratio: str) -> dict[str, str]:
    """The merge knobs as the layers use them: the ratio (0 when the mode is "none") and whether
    the mode is vid-TLDR's."""
    off = g.op("Equal", mode, g.const(MERGE_MODES.index("none")))
    return {"ratio": g.where(off, g.const(0.0, np.float32), ratio),
            "tldr": g.op("Equal", mode, g.const(MERGE_MODES.index("tldr")))}


def joint_layer(g: Builder, cfg: HaltingVTConfig, blk: JointBlock, i: int, state: dict[str, str], threshold: str,
                merge: dict[str, str], null_rows: str):
    """Wraps one joint layer in If(any token live): skipped entirely once every class token halted."""
    any_live = g.op("Greater", g.op("ReduceMax", g.cast(state["live"], F32), keepdims=0), g.const(0.0, np.float32))
    ran = g.child(f"joint{i}/")
    ran_out = joint_layer_body(ran, cfg, blk, i, state, threshold, merge, null_rows)
    skipped = g.child(f"skip{i}/")
    skipped_out = {k: skipped.op("Identity", state[k]) for k in STATE}
    skipped_out["count"] = skipped.full_like_dims(skipped.op("Shape", state["n_halted"]), 0, np.int64)  # nothing processed
    outs = g.op("If", any_live, outputs=len(LAYER_OUTPUTS), hint=f"joint{i}",
                then_branch=subgraph(ran, ran_out, LAYER_OUTPUTS, f"joint{i}"),
                else_branch=subgraph(skipped, skipped_out, LAYER_OUTPUTS, f"skip{i}"))
    out = dict(zip(LAYER_OUTPUTS, outs))
    return {k: out[k] for k in STATE}, out["count"]


def subgraph(b: Builder, outs: dict[str, str], table: dict[str, int], name: str) -> onnx.GraphProto:
    """A branch whose outputs are `outs[k]` for each (k, element type) of `table`, in its order."""
    return helper.make_graph(b.nodes, name, [], [helper.make_tensor_value_info(outs[k], t, None) for k, t in table.items()])


def joint_layer_body(g: Builder, cfg: HaltingVTConfig, blk: JointBlock, i: int, s: dict[str, str], threshold: str,
                     merge: dict[str, str], null_rows: str) -> dict[str, str]:
    """One joint layer in `forward_compact`'s order: compact, mark stops, attend (proportional attention
    and the null key), merge, feed forward, then the ACT step of the class token."""
    D = cfg.embed_dim
    last = i == cfg.num_joint - 1
    (x, c, ids, live, size), live_count, _ = compact(g, s["x"], s["c"], s["ids"], s["live"], s["size"], D)  # (B, M, D), (B, M) each
    count = g.cast(live_count, I64)  # (B,)
    stop = mark_stops(g, s["stop"], ids, live, i + 1, cfg.num_frames * cfg.patches_per_frame)  # (B, T*P+1)

    null_k, null_v = (np_(t) for t in blk.null_kv())  # (H, d) each: what every halted token presents
    extras = {
        "key_bias": g.unsqueeze(g.where(live, g.op("Log", size), g.const(NEG_INF, np.float32)), [1, 2]),  # (B, 1, 1, M): proportional attention
        "null_k": g.weight(null_k[None, :, None, :], f"joint{i}.null_k"),  # (1, H, 1, d)
        "null_v": g.weight(null_v[None, :, None, :], f"joint{i}.null_v"),  # (1, H, 1, d)
        "null_rows": null_rows,  # [B, H, 1, d]
        "null_bias": g.reshape(null_logit_bias(g, s["n_halted"], cfg.quirk_attend_halted), [-1, 1, 1, 1]),  # (B, 1, 1, 1)
    }
    h = f"joint{i}"
    attn_out, probs, keys = attention(g, blk.attn, ln(g, blk.norm1, x, f"{h}.norm1"), D, f"{h}.attn", extras, merge_parts=True)
    x = g.op("Add", x, attn_out)  # (B, M, D)
    merged = merge_if_any(g, i, count, merge, {"x": x, "size": size, "c": c, "ids": ids, "live": live}, probs, keys, D)
    x, size, c, ids, live = (merged[k] for k in ("x", "size", "c", "ids", "live"))  # (B, M', D), (B, M') each
    z = g.op("Add", x, mlp(g, blk.mlp, ln(g, blk.norm2, x, f"{h}.norm2"), f"{h}.mlp"))  # (B, M', D)

    score = halting_score(g, z, g.dim(live, 1), cfg, last)  # (B, M')
    c_new, r_cls, weight, still = act_step(g, c, s["r_cls"], score, live, threshold, last)  # (B, M'), (B,), (B,), (B, M')
    cls_out = g.op("Add", s["cls_out"], g.op("Mul", g.first(z, 1), g.unsqueeze(weight, [1])))  # (B, D)
    zero = g.const(0.0, np.float32)
    halted_now = g.op("And", live, g.op("Not", still))
    n_halted = g.op("Add", s["n_halted"], g.sum_axis(g.where(halted_now, size, zero), 1))  # (B,): halted mass
    live_next = g.op("And", still, g.slice(still, 0, 1, 1))  # (B, M'): a halted class token ends its video
    return {"x": z, "c": c_new, "ids": ids, "live": live_next, "n_halted": n_halted, "r_cls": r_cls, "cls_out": cls_out,
            "stop": stop, "size": size, "count": count}


def compact(g: Builder, x: str, c: str, ids: str, live: str, size: str, dim: int,
            may_be_empty: bool = False) -> tuple[tuple[str, ...], str, str]:
    """model.compact: each video's live tokens to the front (stable), the token axis cut to the batch's
    largest live count (at least 1; `may_be_empty` says that no token may be live, else the layer
    runs only when some is). Returns the gathered tensors, the live count per video (B,) float and M
    as a 1-element tensor."""
    live_count = g.count_true(live, 1)  # (B,)
    m = g.reshape(g.cast(g.op("ReduceMax", live_count, keepdims=1), I64), [1])  # [M]
    if may_be_empty:
        m = g.op("Max", m, g.const([1]))
    n = g.dim(live, 1)
    pos = g.cast(g.op("Range", g.const(0), g.squeeze(n, [0]), g.const(1)), F32)  # (N,)
    key = g.where(live, pos, g.op("Add", pos, g.cast(n, F32)))  # (B, N): live tokens first, order kept
    order = g.op("TopK", key, m, axis=-1, largest=0, sorted=1, outputs=2)[1]  # (B, M)
    gathered = (g.gather_rows(x, order, dim),  # (B, M, D)
                *(g.gather_rows(t, order, None) for t in (c, ids, live, size)))  # (B, M) each
    return gathered, live_count, m


def mark_stops(g: Builder, stop: str, ids: str, live: str, layer: int, dummy: int) -> str:
    """stop[b, id] = layer for every live token (the last layer a patch reaches); the class token and
    padding write to the dummy slot past the patches."""
    where = g.where(live, ids, g.const(dummy))  # (B, M)
    return g.op("ScatterElements", stop, where, g.op("Expand", g.const(layer), g.op("Shape", where)), axis=1)


def halting_score(g: Builder, z: str, m: str, cfg: HaltingVTConfig, last: bool) -> str:
    """halting.halting_score from channel 0 (B, M); the class token's is 0 before the last layer unless
    cfg.quirk_cls_halts (Q3: the authors' class token halts like any token)."""
    x0 = g.first(z, 2)  # (B, M)
    score = g.op("Sigmoid", g.op("Sub", g.op("Mul", x0, g.const(cfg.halt_scale, np.float32)), g.const(cfg.halt_center, np.float32)))
    if cfg.quirk_cls_halts or last:
        return score
    patches = np.ones(1 + cfg.num_frames * cfg.patches_per_frame, np.float32)
    patches[0] = 0.0  # (N0,): 0 for the class token, 1 for every patch
    return g.op("Mul", score, g.op("Slice", g.const(patches, np.float32), g.const([0]), m, g.const([0])))  # (B, M)


def act_step(g: Builder, c: str, r_cls: str, h: str, live: str, threshold: str, last: bool) -> tuple[str, str, str, str]:
    """halting.act_step for every token's c and still-active, and for the class token's remainder and
    weight only (the only ACT sum the model reads). Returns c_new (B, M), r_cls_new (B,), the class
    token's weight (B,), still_active (B, M)."""
    zero = g.const(0.0, np.float32)
    c_new = g.op("Add", c, h)  # (B, M)
    if last:
        reached, not_reached = live, g.op("And", live, g.const(False, np.bool_))
    else:
        reached = g.op("And", live, g.op("Greater", c_new, threshold))
        not_reached = g.op("And", live, g.op("Less", c_new, threshold))
    cls_reached, cls_going, h0 = (g.first(t, 1) for t in (reached, not_reached, h))  # (B,) each
    spent = g.where(cls_going, h0, zero)  # (B,)
    weight = g.where(cls_reached, r_cls, spent)  # (B,)
    r_new = g.op("Sub", r_cls, spent)  # (B,)
    return c_new, r_new, weight, not_reached


def null_logit_bias(g: Builder, n_halted: str, attend_halted: bool) -> str:
    """halting.null_logit_bias: log(n_halted), or NEG_INF when no token has halted."""
    neg = g.const(NEG_INF, np.float32)
    if not attend_halted:
        return g.op("Add", g.op("Mul", n_halted, g.const(0.0, np.float32)), neg)  # (B,) of NEG_INF
    has = g.op("Greater", n_halted, g.const(0.0, np.float32))
    return g.where(has, g.op("Log", g.op("Max", n_halted, g.const(1.0, np.float32))), neg)


# ---- token merging (merging.py) -----------------------------------------------------------------

def merge_if_any(g: Builder, i: int, count: str, merge: dict[str, str], tokens: dict[str, str], probs: str,
                 keys: str, dim: int) -> dict[str, str]:
    """merging.merge_counts, then merging.merge_step inside If(some video merges a token), so that
    nothing is computed (and nothing changes) when no video does. `tokens` and the result hold MERGED."""
    patches = g.op("Max", g.op("Sub", count, g.const(1)), g.const(0))  # (B,)
    r = g.cast(g.op("Floor", g.op("Mul", merge["ratio"], g.cast(patches, F32))), I64)
    r = g.op("Max", g.op("Min", r, g.op("Div", patches, g.const(2))), g.const(0))  # (B,): merging.merge_count
    some = g.op("Greater", g.op("ReduceMax", r, keepdims=0), g.const(0))
    merged = g.child(f"merge{i}/")
    merged_out = merge_body(merged, merge["tldr"], tokens, probs, keys, r, i, dim)
    kept = g.child(f"nomerge{i}/")
    kept_out = {k: kept.op("Identity", tokens[k]) for k in MERGED}
    outs = g.op("If", some, outputs=len(MERGED), hint=f"merge{i}", then_branch=subgraph(merged, merged_out, MERGED, f"merge{i}"),
                else_branch=subgraph(kept, kept_out, MERGED, f"nomerge{i}"))
    return dict(zip(MERGED, outs))


def merge_body(g: Builder, tldr: str, tokens: dict[str, str], probs: str, keys: str, r: str, i: int, dim: int) -> dict[str, str]:
    """merging.merge_step, then model.compact of what it leaves (forward_compact): the metric and the
    mass a source brings depend on the mode (one more If)."""
    x, size, c, ids, live = (tokens[k] for k in MERGED)
    m = g.dim(live, 1)
    pos = g.op("Range", g.const(0), g.squeeze(m, [0]), g.const(1))  # (M,)
    patch = g.op("And", live, g.op("Greater", pos, g.const(0)))  # (B, M): the class token never merges

    matching = {"metric": F32, "brings": F32}  # what the tokens are compared on, the mass a source brings
    tldr_b = g.child(f"tldr{i}/")
    tldr_out = {"metric": tldr_b.op("Identity", x), "brings": tldr_b.op("Mul", size, saliency(tldr_b, probs, patch))}
    tome_b = g.child(f"tome{i}/")
    tome_out = {"metric": tome_b.op("Identity", keys), "brings": tome_b.op("Identity", size)}
    metric, brings = g.op("If", tldr, outputs=2, hint=f"metric{i}",
                          then_branch=subgraph(tldr_b, tldr_out, matching, f"tldr{i}"),
                          else_branch=subgraph(tome_b, tome_out, matching, f"tome{i}"))
    odd = lambda t: g.slice(t, 1, INT64_MAX, 1, step=2)  # noqa: E731  A: source candidates
    even = lambda t: g.slice(t, 0, INT64_MAX, 1, step=2)  # noqa: E731  B: destinations, class token first
    weight = odd(brings)  # (B, |A|): the mass each source would bring (ToMe: its size)

    # match: cosine similarity of A against B, best destination per A token
    norm = g.op("Max", g.op("ReduceL2", metric, axes=[-1], keepdims=1), g.const(1e-12, np.float32))
    unit = g.op("Div", metric, norm)  # (B, M, m)
    scores = g.op("MatMul", odd(unit), g.transpose(even(unit), [0, 2, 1]))  # (B, |A|, |B|)
    scores = g.where(g.unsqueeze(even(patch), [1]), scores, g.const(NEG_INF, np.float32))
    best = g.op("ReduceMax", scores, axes=[-1], keepdims=0)  # (B, |A|)
    dest = g.op("ArgMax", scores, axis=-1, keepdims=0)  # (B, |A|): first maximum on ties
    best = g.where(odd(patch), best, g.const(NOT_A_SOURCE, np.float32))

    # pick_sources: rank by similarity (TopK: ties to the lower index), the r best become sources
    n_a = g.dim(best, 1)
    order = g.op("TopK", best, n_a, axis=-1, largest=1, sorted=1, outputs=2)[1]  # (B, |A|)
    arange = g.op("Expand", g.op("Range", g.const(0), g.squeeze(n_a, [0]), g.const(1)), g.op("Shape", order))
    ranks = g.op("ScatterElements", g.full_like_dims(g.op("Shape", order), 0, np.int64), order, arange, axis=1)
    src = g.op("Less", ranks, g.unsqueeze(r, [1]))  # (B, |A|)

    # merge with size tracking: sums weighted by the mass each source brings, then divided
    zero = g.const(0.0, np.float32)
    mass = g.where(src, weight, zero)  # (B, |A|)
    x_a, x_b = odd(x), even(x)
    # ScatterElements, not ScatterND: ONNX Runtime's ScatterND splits its rows over threads and adds
    # without atomics, so sources that share a destination race (lost sums, different answers run to
    # run above ~2e5 elements; measured, and test_merged_sums_are_the_same_at_any_thread_count).
    # ScatterND was 14x faster on one thread; a race is not a speed-up.
    index = g.op("Expand", g.unsqueeze(dest, [2]), g.op("Shape", x_a))  # (B, |A|, D)
    add_x = g.op("ScatterElements", g.full_like_dims(g.op("Shape", x_b), 0.0, np.float32), index,
                 g.op("Mul", x_a, g.unsqueeze(mass, [2])), axis=1, reduction="add")  # (B, |B|, D)
    zeros_b = g.full_like_dims(g.op("Shape", even(size)), 0.0, np.float32)
    add_m = g.op("ScatterElements", zeros_b, dest, mass, axis=1, reduction="add")  # (B, |B|)
    add_c = g.op("ScatterElements", zeros_b, dest, g.op("Mul", odd(c), mass), axis=1, reduction="add")
    size_b = g.op("Add", even(size), add_m)  # (B, |B|)
    x_new = g.op("Div", g.op("Add", g.op("Mul", x_b, g.unsqueeze(even(size), [2])), add_x), g.unsqueeze(size_b, [2]))
    c_new = g.op("Div", g.op("Add", g.op("Mul", even(c), even(size)), add_c), size_b)
    live_a = g.op("And", odd(live), g.op("Not", src))
    # The merged-away sources leave before the MLP, which then runs on M - r tokens as the FLOP count
    # says (before, it ran on all M: the preset's joint layers spent 11% more than their FLOPs' share).
    # Only the A side is compacted: the B side keeps its tokens, so the next layer's compaction gives
    # the order model.compact gives here, and the outputs are the same.
    (x_a, c_a, ids_a, live_a, size_a), _, _ = compact(g, x_a, odd(c), odd(ids), live_a, odd(size), dim, may_be_empty=True)
    return {"x": g.concat(x_new, x_a, axis=1), "size": g.concat(size_b, size_a, axis=1),
            "c": g.concat(c_new, c_a, axis=1), "ids": g.concat(even(ids), ids_a, axis=1),
            "live": g.concat(even(live), live_a, axis=1)}


def saliency(g: Builder, probs: str, patch: str) -> str:
    """merging.sharpness_saliency: probs (B, H, M, M+1), patch (B, M) -> weights (B, M) in [0, 1]."""
    zero = g.const(0.0, np.float32)
    a = g.op("ReduceMean", probs, axes=[1], keepdims=0)  # (B, M, M+1)
    s = g.sum_axis(g.op("Mul", a, g.op("Log", g.op("Max", a, g.const(1e-30, np.float32)))), 2)  # (B, M)
    lo = g.op("ReduceMin", g.where(patch, s, g.const(3e38, np.float32)), axes=[-1], keepdims=1)  # (B, 1)
    hi = g.op("ReduceMax", g.where(patch, s, g.const(-3e38, np.float32)), axes=[-1], keepdims=1)
    norm = g.op("Div", g.op("Sub", s, lo), g.op("Max", g.op("Sub", hi, lo), g.const(1e-12, np.float32)))
    count = g.op("Max", g.sum_axis(g.cast(patch, F32), 1, keepdims=1), g.const(1.0, np.float32))  # (B, 1)
    mean = g.op("Div", g.sum_axis(g.where(patch, norm, zero), 1, keepdims=1), count)
    centred = g.op("Sub", norm, mean)
    top = g.op("Max", g.op("ReduceMax", g.where(patch, centred, zero), axes=[-1], keepdims=1), g.const(1e-12, np.float32))
    fore = g.op("And", patch, g.op("GreaterOrEqual", centred, zero))
    return g.where(fore, g.op("Div", centred, top), zero)
