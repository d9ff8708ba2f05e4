"""Reduced-precision variants (export/variants.py): the int8 graph shipped in models/default and an
fp16 graph made on demand stay valid ONNX with the same token axes, Ifs and halting rule, and agree
with fp32 within their bounds on clips the bounds were not measured on."""

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from haltingvt.export import feeds, sha256
from haltingvt.export.variants import BOUNDS, MERGING_BOUNDS, Parity, add_variant, op_counts, parity_clips, to_fp16

ort = pytest.importorskip("onnxruntime")
MODELS = Path(__file__).resolve().parents[1]
DEFAULT = MODELS / "default"
TINY = MODELS / "fixtures" / "tiny"
CHECK_SEED = 1901  # validation namespace; not the seed the manifest's parity figures come from (2019)


def compare(folder: Path, variant: Path, clips: np.ndarray, settings) -> Parity:
    """What variants.measure_parity computes, on the clips and knob settings given here."""
    ref = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    var = ort.InferenceSession(str(variant), providers=["CPUExecutionProvider"])
    agree = n = diff = total_ref = total_var = 0
    worst = 0.0
    for setting in settings:
        (la, ta, sa), (lb, tb, sb) = (s.run(None, feeds(clips, *setting)) for s in (ref, var))
        assert sa.shape == sb.shape and lb.dtype == np.float32
        agree += int((la.argmax(-1) == lb.argmax(-1)).sum())
        worst = max(worst, float((np.abs(la - lb).max(-1) / np.abs(la).max(-1)).max()))
        diff, total_ref, total_var, n = diff + int(np.abs(ta - tb).sum()), total_ref + int(ta.sum()), total_var + int(tb.sum()), n + len(la)
    return Parity(len(clips), len(settings), agree / n, worst, diff / total_ref, total_ref, total_var)


@pytest.fixture(scope="module")
def default_clips():
    manifest = json.loads((DEFAULT / "manifest.json").read_text())
    return manifest, parity_clips(manifest, 12, seed=CHECK_SEED)


def settings_of(manifest, merging=False):
    """The parity settings (default knobs, halting off), or both merge modes at the default knobs."""
    knobs = manifest["knobs"]
    keep, thr = knobs["keep_ratio"]["default"], knobs["halt_threshold"]["default"]
    if merging:
        return [(keep, thr, "tome", 0.3), (keep, thr, "tldr", 0.25)]
    return [(keep, thr), (1.0, float(manifest["flops"]["joint_blocks"]))]


def test_the_shipped_int8_variant_is_listed_and_hashed():
    manifest = json.loads((DEFAULT / "manifest.json").read_text())
    v = manifest["variants"]["int8"]
    assert v["precision"] == "int8" and v["parity"]["within_bounds"]
    assert manifest["files"][v["file"]]["sha256"] == v["sha256"] == sha256(DEFAULT / v["file"])


def test_the_shipped_int8_variant_quantizes_the_joint_layers_and_stays_valid():
    model = onnx.load(DEFAULT / manifest_variant("int8"))
    onnx.checker.check_model(model, full_check=True)  # topologically sorted, If branches typed
    inside = op_counts(model, in_subgraphs=True)
    # 6 joint layers x (qkv, proj, fc1, fc2; the null key is a row of K); what stays fp32 there is
    # attention's activation x activation MatMuls (2 a layer) and the merge similarity (1 a layer).
    assert inside.get("MatMulInteger") == 24 and inside.get("MatMul") == 18
    assert op_counts(model)["If"] == op_counts(onnx.load(DEFAULT / "model.onnx"))["If"]


def manifest_variant(precision: str) -> str:
    return json.loads((DEFAULT / "manifest.json").read_text())["variants"][precision]["file"]


def test_the_shipped_int8_variant_agrees_with_fp32_on_fresh_clips(default_clips):
    """Halting on and off, then both merge modes: the If branches quantized, the halting decisions
    and the token axes they set stay within the int8 bounds (variants.BOUNDS, MERGING_BOUNDS)."""
    manifest, clips = default_clips
    variant = DEFAULT / manifest_variant("int8")
    parity = compare(DEFAULT, variant, clips, settings_of(manifest))
    assert parity.violations(BOUNDS["int8"]) == [], parity
    merging = compare(DEFAULT, variant, clips, settings_of(manifest, merging=True))
    assert merging.violations(MERGING_BOUNDS["int8"]) == [], merging


def test_fp16_variant_agrees_with_fp32_at_fp16_tolerance(default_clips, tmp_path):
    """ONNX Runtime's CPU provider has fp16 MatMul and Conv kernels, so the variant the CUDA
    provider is meant to run is checked whole here (on the GPU itself it is untested)."""
    manifest, clips = default_clips
    model = to_fp16(onnx.load(DEFAULT / "model.onnx"))
    path = tmp_path / "model.fp16.onnx"
    onnx.save(model, path)
    io = [i.type.tensor_type.elem_type for i in list(model.graph.input) + list(model.graph.output)]
    ref = onnx.load(DEFAULT / "model.onnx")
    assert io == [i.type.tensor_type.elem_type for i in list(ref.graph.input) + list(ref.graph.output)]  # the engine feeds the same
    halves = [i for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT16]
    assert sum(np.prod(i.dims) for i in halves) > 0.95 * sum(np.prod(i.dims) for i in ref.graph.initializer)
    parity = compare(DEFAULT, path, clips, settings_of(manifest) + settings_of(manifest, merging=True))
    assert parity.violations(BOUNDS["fp16"]) == [], parity


def test_add_variant_records_it_in_the_manifest_and_the_engine_files(tmp_path):
    folder = tmp_path / "tiny"
    shutil.copytree(TINY, folder)
    for p in folder.glob("model.*.onnx"):
        p.unlink()
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"] = {k: v for k, v in manifest["files"].items() if not k.startswith("model.")}
    manifest["files"]["model.onnx"] = {"sha256": sha256(folder / "model.onnx"), "bytes": (folder / "model.onnx").stat().st_size}
    manifest.pop("variants", None)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    v = add_variant(folder, "fp16", clips=4)
    after = json.loads((folder / "manifest.json").read_text())
    assert after["variants"]["fp16"] == v and after["files"]["model.fp16.onnx"]["sha256"] == sha256(folder / "model.fp16.onnx")
    assert after["graph"] == manifest["graph"]  # model.onnx stays the fp32 graph


def test_add_variant_refuses_a_graph_that_does_not_match_its_manifest(tmp_path):
    folder = tmp_path / "tiny"
    shutil.copytree(TINY, folder)
    (folder / "model.onnx").write_bytes((folder / "model.onnx").read_bytes() + b"\0")
    with pytest.raises(ValueError, match="does not match"):
        add_variant(folder, "int8")


def test_the_int8_bounds_catch_a_variant_that_drifts(default_clips, tmp_path):
    """The bounds are not vacuous: the int8 graph with its weight scales 1.5x off must fail them."""
    from onnx import numpy_helper

    manifest, clips = default_clips
    model = onnx.load(DEFAULT / manifest_variant("int8"))
    for init in model.graph.initializer:
        if init.data_type == onnx.TensorProto.FLOAT and init.name.endswith("_scale"):
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * np.float32(1.5), init.name))
    path = tmp_path / "drifted.onnx"
    onnx.save(model, path)
    parity = compare(DEFAULT, path, clips[:6], settings_of(manifest))
    assert parity.violations(BOUNDS["int8"]) != []
