"""Reduced-precision variants of an exported graph, written beside model.onnx and recorded in the
manifest's `variants` map (file, sha256, bytes, precision, how it was made, its parity with fp32).

- int8: ONNX Runtime's dynamic quantization of the MatMuls whose right side is a weight (QKV,
  projection, MLP), inside the joint layers' If branches too (EnableSubgraph): weights
  int8 per tensor, activations quantized per run (DynamicQuantizeLinear) so no calibration set is
  involved. Attention's activation x activation MatMuls, the halting arithmetic, compaction and
  merging stay fp32, so the token axes, the Ifs and the halting rule are the same graph.
- fp16: for the CUDA execution provider. The MatMuls and Convs (all of the FLOPs) run in fp16 with
  fp16 weights; everything else (LayerNorm, softmax, residual adds, the halting accumulators, the
  position keys of compaction) stays fp32, the split torch.autocast makes. Inputs and outputs keep
  their dtypes, so the engine feeds the same tensors to every variant. Converting the whole graph
  (onnxruntime.transformers.float16) breaks on values our If branches read from the outer graph,
  and a whole-fp16 graph flips halting decisions: fp16's resolution near 1 (2^-10) is coarse
  against a cumulative score compared with 0.99.

Parity is measured on rendered held-out clips (validation seeds, where choices are made) at the
model's default knobs and with halting off; the bounds are per precision (BOUNDS)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

PRECISIONS = ("int8", "fp16")
PARITY_SEED = 2019  # validation namespace (synth.scenes.VALIDATION_SEEDS), used for nothing else
FP16_OPS = frozenset({"MatMul", "Conv"})


@dataclass(frozen=True)
class Bounds:
    """How far a variant may drift from fp32 on the parity clips.

    agreement: share of (clip, setting) pairs with the same top-1 class.
    logits: max |variant - fp32| over a clip's logits, relative to that clip's largest |fp32 logit|.
    tokens: sum over clips and joint layers of |active tokens - fp32's|, relative to fp32's sum: a
    token halts when its cumulative score crosses the threshold, so one whose score sits within the
    variant's noise of it halts a layer earlier or later; the sum is the joint layers' share of the
    cost, so this bounds how far the variant's FLOPs (and time) drift from what fp32 reports."""

    agreement: float
    logits: float
    tokens: float


# int8: per-tensor weights and per-run activation scales leave a few percent of logit noise
# (measured 6% on motion-tiny, top-1 unchanged); 3% of tokens is at most 3% of the joint layers'
# FLOPs (measured 0.4%). fp16 with fp32 accumulation and fp32 elsewhere is near exact (1e-4, no token moved).
BOUNDS = {"int8": Bounds(agreement=0.9, logits=0.15, tokens=0.03),
          "fp16": Bounds(agreement=1.0, logits=0.01, tokens=0.005)}

# With token merging on, int8 noise also moves which tokens merge (a discrete bipartite matching on
# the keys): a few clips' logits move by up to half their scale (measured 0.55 on motion-tiny at
# tome 0.3 and tldr 0.25) while top-1 still agreed on 92-100% of clips. Checked by
# models/tests/test_variants.py, not at export (the served default is merging off).
MERGING_BOUNDS = {"int8": Bounds(agreement=0.9, logits=1.0, tokens=0.03), "fp16": BOUNDS["fp16"]}

METHODS = {
    "int8": "onnxruntime.quantization.quantize_dynamic: MatMuls with weight operands, If branches included; "
            "weights int8 per tensor, activations uint8 per run; the rest fp32",
    "fp16": "haltingvt.export.variants.to_fp16: MatMul and Conv in fp16 with fp16 weights, the rest fp32; "
            "inputs and outputs float32",
}


def variant_file(precision: str) -> str:
    return f"model.{precision}.onnx"


def _graphs(g: onnx.GraphProto):
    """The graph and every subgraph (If branches, nested), depth first."""
    yield g
    for n in g.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                yield from _graphs(a.g)
            for sub in a.graphs:
                yield from _graphs(sub)


def op_counts(model: onnx.ModelProto, in_subgraphs: bool = False) -> dict[str, int]:
    """Node counts by op type, in the whole model or only inside subgraphs."""
    counts: dict[str, int] = {}
    for g in _graphs(model.graph):
        if in_subgraphs and g is model.graph:
            continue
        for n in g.node:
            counts[n.op_type] = counts.get(n.op_type, 0) + 1
    return counts


def _outer_reads(node: onnx.NodeProto) -> list[str]:
    """Names a node reads: its inputs and what its subgraphs read from the enclosing scopes."""
    names = list(node.input)
    for a in node.attribute:
        for sub in ([a.g] if a.type == onnx.AttributeProto.GRAPH else []) + list(a.graphs):
            local = {i.name for i in sub.initializer} | {i.name for i in sub.input}
            for n in sub.node:
                names += [x for x in _outer_reads(n) if x not in local]
                local.update(n.output)
    return names


def topological_sort(g: onnx.GraphProto) -> None:
    """Orders g's nodes so that each follows what it reads, outer-scope reads of If branches
    included. ONNX Runtime sorts on load; the ONNX checker (and other runtimes) do not."""
    nodes = list(g.node)
    producer = {o: k for k, n in enumerate(nodes) for o in n.output}
    deps = [{producer[x] for x in _outer_reads(n) if x in producer} for n in nodes]
    done: set[int] = set()
    order: list[int] = []

    def visit(k: int) -> None:  # iterative DFS: graphs have thousands of nodes
        stack = [(k, iter(sorted(deps[k])))]
        while stack:
            cur, it = stack[-1]
            nxt = next((d for d in it if d not in done), None)
            if nxt is None:
                stack.pop()
                if cur not in done:
                    done.add(cur)
                    order.append(cur)
            else:
                stack.append((nxt, iter(sorted(deps[nxt]))))

    for k in range(len(nodes)):
        if k not in done:
            visit(k)
    del g.node[:]
    g.node.extend(nodes[k] for k in order)


def to_int8(src: Path, dst: Path) -> None:
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    # It advises its shape-inference pre-pass, made for static quantization; dynamic needs none.
    logging.getLogger().setLevel(logging.ERROR)
    quantize_dynamic(src, dst, op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8,
                     extra_options={"EnableSubgraph": True})
    model = onnx.load(dst)
    # The quantizer appends the nodes it adds for the If branches' weights after the Ifs.
    topological_sort(model.graph)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, dst)
    if op_counts(model, in_subgraphs=True).get("MatMulInteger", 0) == 0:
        raise AssertionError(f"{dst}: no MatMul inside the joint layers' If branches was quantized")


def to_fp16(model: onnx.ModelProto, ops: frozenset[str] = FP16_OPS) -> onnx.ModelProto:
    """`ops` nodes run in fp16: their fp32 inputs are cast (weights used only by such nodes are stored
    fp16 instead) and their outputs cast back, in whichever graph or If branch they sit."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    inits = {i.name: i for g in _graphs(m.graph) for i in g.initializer}
    users: dict[str, set[bool]] = {}
    for g in _graphs(m.graph):
        for n in g.node:
            for name in n.input:
                users.setdefault(name, set()).add(n.op_type in ops)
    half = {k for k, i in inits.items() if i.data_type == TensorProto.FLOAT and users.get(k) == {True}}
    for name in half:
        inits[name].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(inits[name]).astype(np.float16), name))
    serial = 0
    for g in _graphs(m.graph):
        nodes = []
        for n in g.node:
            if n.op_type not in ops:
                nodes.append(n)
                continue
            for k, name in enumerate(n.input):
                if name and name not in half:
                    serial += 1
                    cast = f"{name}/fp16_{serial}"
                    nodes.append(helper.make_node("Cast", [name], [cast], to=TensorProto.FLOAT16, name=f"{cast}/cast"))
                    n.input[k] = cast
            nodes.append(n)
            for k, name in enumerate(n.output):
                n.output[k] = f"{name}/fp16"
                nodes.append(helper.make_node("Cast", [n.output[k]], [name], to=TensorProto.FLOAT, name=f"{name}/cast_fp32"))
        del g.node[:]
        g.node.extend(nodes)
    onnx.checker.check_model(m, full_check=True)
    return m


def make_variant(src: Path, dst: Path, precision: str) -> None:
    if precision == "int8":
        to_int8(src, dst)
    elif precision == "fp16":
        onnx.save(to_fp16(onnx.load(src)), dst)
    else:
        raise ValueError(f"unknown precision {precision!r}; one of {PRECISIONS}")


# ---- parity ------------------------------------------------------------------------------------

def parity_clips(manifest: dict, count: int, seed: int = PARITY_SEED) -> np.ndarray:
    """Rendered held-out clips as the model's input, float32 (N, 3, T, S, S)."""
    from ..synth.stream import make_eval_clip

    spec = manifest["input"]
    clips = np.stack([make_eval_clip(seed, i, spec["frames"], spec["size"], spec["resize_short_side"])[0]
                      for i in range(count)]).astype(np.float32)  # (N, T, S, S, 3)
    clips = (clips - np.array(spec["mean"], np.float32)) / np.array(spec["std"], np.float32)
    return np.ascontiguousarray(clips.transpose(0, 4, 1, 2, 3))


def parity_settings(manifest: dict) -> list[tuple[float, float]]:
    """(keep, threshold): the served default, and everything kept with halting off."""
    knobs = manifest["knobs"]
    return [(knobs["keep_ratio"]["default"], knobs["halt_threshold"]["default"]),
            (1.0, float(manifest["flops"]["joint_blocks"]))]


@dataclass
class Parity:
    clips: int
    settings: int
    top1_agreement: float
    logits_rel_err: float  # worst clip
    token_rel_diff: float
    fp32_tokens: int
    variant_tokens: int

    def violations(self, bounds: Bounds) -> list[str]:
        out = []
        if self.top1_agreement < bounds.agreement:
            out.append(f"top-1 agreement {self.top1_agreement:.3f} < {bounds.agreement}")
        if self.logits_rel_err > bounds.logits:
            out.append(f"logits rel err {self.logits_rel_err:.3g} > {bounds.logits}")
        if self.token_rel_diff > bounds.tokens:
            out.append(f"active tokens differ by {self.token_rel_diff:.3%} > {bounds.tokens:.1%}")
        return out


def measure_parity(folder: Path, variant: Path, count: int = 24, threads: int = 2, batch: int = 8) -> Parity:
    import onnxruntime as ort

    from . import feeds

    manifest = json.loads((folder / "manifest.json").read_text())
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    ref = ort.InferenceSession(str(folder / manifest["graph"]["file"]), opts, providers=["CPUExecutionProvider"])
    var = ort.InferenceSession(str(variant), opts, providers=["CPUExecutionProvider"])
    video = parity_clips(manifest, count)
    agree, worst, diff, total_ref, total_var, n = 0, 0.0, 0, 0, 0, 0
    for keep, threshold in parity_settings(manifest):
        for i in range(0, count, batch):
            x = feeds(video[i:i + batch], keep, threshold)
            (la, ta, _), (lb, tb, _) = ref.run(None, x), var.run(None, x)
            agree += int((la.argmax(-1) == lb.argmax(-1)).sum())
            rel = np.abs(la - lb).max(-1) / np.maximum(np.abs(la).max(-1), 1e-12)
            worst = max(worst, float(rel.max()))
            diff += int(np.abs(ta - tb).sum())
            total_ref, total_var, n = total_ref + int(ta.sum()), total_var + int(tb.sum()), n + len(la)
    return Parity(count, len(parity_settings(manifest)), agree / n, worst, diff / max(total_ref, 1), total_ref, total_var)


# ---- the model folder ----------------------------------------------------------------------------

def add_variant(folder: str | Path, precision: str, clips: int = 24, threads: int = 2, enforce: bool = True) -> dict:
    """Writes model.PRECISION.onnx from the folder's fp32 graph, checks its parity, and records it in
    manifest.json (files and variants). With enforce, a variant outside BOUNDS is deleted and raises."""
    from . import sha256

    folder = Path(folder)
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    src = folder / manifest["graph"]["file"]
    if sha256(src) != manifest["files"][manifest["graph"]["file"]]["sha256"]:
        raise ValueError(f"{src} does not match manifest.json: refusing to derive a variant from it")
    name = variant_file(precision)
    dst = folder / name
    make_variant(src, dst, precision)
    parity = measure_parity(folder, dst, clips, threads)
    problems = parity.violations(BOUNDS[precision])
    if enforce and problems:
        dst.unlink()
        raise AssertionError(f"{precision} variant of {folder} drifts from fp32: {'; '.join(problems)}")
    import onnxruntime

    info = {"sha256": sha256(dst), "bytes": dst.stat().st_size}
    manifest["files"][name] = info
    manifest.setdefault("variants", {})[precision] = {
        "file": name, **info, "precision": precision, "method": METHODS[precision],
        "tool": f"onnxruntime {onnxruntime.__version__}, onnx {onnx.__version__}",
        "parity": {**asdict(parity), "bounds": asdict(BOUNDS[precision]), "within_bounds": not problems},
    }
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest["variants"][precision]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m haltingvt quantize", description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="an exported model folder (manifest.json, model.onnx)")
    ap.add_argument("--precision", choices=PRECISIONS, action="append",
                    help="variant to write (repeatable; default int8)")
    ap.add_argument("--clips", type=int, default=24, help="rendered validation clips for the parity check")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-enforce", action="store_true",
                    help="record the variant even when its parity is outside the bounds (random-weight bench models)")
    args = ap.parse_args(argv)
    for precision in args.precision or ["int8"]:
        v = add_variant(args.model, precision, args.clips, args.threads, enforce=not args.no_enforce)
        p = v["parity"]
        print(f"wrote {Path(args.model) / v['file']}: {v['bytes'] / 1e6:.2f} MB; vs fp32 on {p['clips']} clips x "
              f"{p['settings']} settings: top-1 agreement {p['top1_agreement']:.3f}, logits rel err {p['logits_rel_err']:.2g}, "
              f"active tokens differ by {p['token_rel_diff']:.2%} ({'within' if p['within_bounds'] else 'OUTSIDE'} bounds)")
    return 0
