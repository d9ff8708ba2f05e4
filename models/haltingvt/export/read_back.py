"""The inverse of export: a HaltingVT holding exactly the weights stored in an exported model.onnx,
read back by initializer name (the exporter's hints are the module paths). The benchmarks and the GPU
check run the PyTorch paths on it, so that both sides compute with the same numbers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from ..config import HaltingVTConfig
from ..model import HaltingVT
from .graph import QUERY_SCALED


def model_from_onnx(model_dir: str | Path) -> tuple[HaltingVT, dict]:
    """cls_token holds cls_token + pos_embed[:, :1] and pos_embed[:, :1] is zero: the same sum, which
    is the only way the graph uses them. fc_motion is not in the graph and does not touch the logits.
    Graphs that carry the softmax scale in their query rows (metadata QUERY_SCALED) have it divided out."""
    model_dir = Path(model_dir)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    cfg = HaltingVTConfig.from_dict(manifest["config"])
    model = HaltingVT(cfg).eval()
    sd = model.state_dict()
    graph = onnx.load(str(model_dir / manifest["graph"]["file"]))
    new: dict[str, torch.Tensor] = {}
    for init in graph.graph.initializer:
        name = re.sub(r"_\d+$", "", init.name.rsplit("/", 1)[-1])
        if name.startswith("const") or name.endswith((".null_k", ".null_v")):
            continue  # constants, and the null key/value derived from each layer's weights
        key, value = state_entry(name, numpy_helper.to_array(init), sd, cfg.num_glimpser)
        new[key] = value
    missing = sorted(k for k in sd if k not in new and not k.startswith("fc_motion."))
    if missing:
        raise KeyError(f"weights not found in the ONNX file: {missing}")
    if {p.key: p.value for p in graph.metadata_props}.get(QUERY_SCALED) == "true":
        for key in [k for k in new if k.endswith((".qkv.weight", ".qkv.bias"))]:
            rows = new[key].shape[0] // 3  # q, k, v rows: (3D[, D])
            new[key][:rows] /= model.get_submodule(key.rsplit(".", 2)[0]).scale
    model.load_state_dict({**sd, **new})
    return model.eval(), manifest


def state_entry(name: str, arr: np.ndarray, sd: dict, glimpser_blocks: int) -> tuple[str, torch.Tensor]:
    """The state-dict key and tensor of one initializer (the export's hint names its module path)."""
    if name == "pos_embed":
        pe = torch.zeros_like(sd["pos_embed"])  # (1, 1+P, D): the class token's row is zero
        pe[0, 1:] = torch.from_numpy(arr.copy())
        return "pos_embed", pe
    if name == "time_embed":
        return "time_embed", torch.from_numpy(arr[:, 0, :].copy())[None]  # (1, T, D)
    if name == "cls_token":
        return "cls_token", torch.from_numpy(arr.copy()).reshape(1, 1, -1)  # (1, 1, D)
    key = {"patch_embed.weight": "patch_embed.proj.weight", "patch_embed.bias": "patch_embed.proj.bias"}.get(name, name)
    m = re.match(r"(glimpser|joint)(\d+)\.(.*)", key)
    if m:
        key = f"blocks.{int(m[2]) + (glimpser_blocks if m[1] == 'joint' else 0)}.{m[3]}"
    if key.endswith(".weight_t"):
        key, arr = key[: -len("_t")], arr.T  # stored (in, out) for MatMul; torch keeps (out, in)
    if key not in sd or tuple(sd[key].shape) != arr.shape:
        raise KeyError(f"initializer {name} -> {key} {arr.shape} does not fit the model")
    return key, torch.from_numpy(np.array(arr, copy=True))
