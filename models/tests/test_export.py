"""ONNX Runtime (Python) against the PyTorch reference path: logits to 1e-4 relative, token counts
and the per-patch stop map exact, for batch 1-4, several keep ratios and thresholds."""

import itertools
import json
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from haltingvt import preset
from haltingvt.export import export_model, feeds, sha256
from haltingvt.export.graph import build_graph
from haltingvt.merging import merge_count
from haltingvt.testing import random_model, random_video, sharpen_attention

ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    cfg = preset("test-micro", labels=("a", "b", "c", "d", "e"))
    model = random_model(cfg, seed=2)
    out = tmp_path_factory.mktemp("export")
    export_model(model, out, "micro")
    sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    return model, sess, out


def test_parity_batch_1_to_4_keeps_and_thresholds(exported):
    model, sess, _ = exported
    cfg = model.cfg
    worst = 0.0
    for batch, keep, thr in itertools.product((1, 2, 3, 4), (0.3, 0.5, 0.7, 1.0), (0.7, 0.9, 0.99, 4.0)):
        video = random_video(cfg, batch, seed=batch * 10)
        logits, tokens, stop = sess.run(None, feeds(video.numpy(), keep, thr))
        with torch.no_grad():
            ref = model.forward_reference(video, keep, thr)
        rel = np.abs(logits - ref.logits.numpy()).max() / np.abs(ref.logits.numpy()).max()
        worst = max(worst, rel)
        assert rel < 1e-4, (batch, keep, thr, rel)
        assert np.array_equal(tokens, ref.active_tokens.numpy()), (batch, keep, thr)
        assert np.array_equal(stop, ref.patch_stop_layer.numpy()), (batch, keep, thr)
    print(f"worst logits relative error {worst:.2e}")


def test_batched_equals_unbatched_in_onnx_runtime(exported):
    model, sess, _ = exported
    video = random_video(model.cfg, 4, seed=3).numpy()
    logits, tokens, stop = sess.run(None, feeds(video, 0.5, 0.99))
    assert len({tuple(t) for t in tokens.tolist()}) > 1
    for b in range(4):
        one = sess.run(None, feeds(video[b:b + 1], 0.5, 0.99))
        assert np.abs(one[0] - logits[b:b + 1]).max() <= 1e-5 * np.abs(logits).max()
        assert np.array_equal(one[1][0], tokens[b]) and np.array_equal(one[2][0], stop[b])


def test_dynamic_dims_and_io_names():
    graph = build_graph(random_model(preset("test-micro"))).graph
    assert [i.name for i in graph.input] == ["video", "keep_ratio", "halt_threshold", "merge_mode", "merge_ratio"]
    assert [o.name for o in graph.output] == ["logits", "active_tokens", "patch_stop_layer"]
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert sum(n.op_type == "If" for n in graph.node) == preset("test-micro").num_joint
    assert not [n for n in graph.node if n.op_type == "Loop"], "layers are unrolled, each inside an If"


def test_manifest_describes_everything_and_hashes_every_file(exported):
    model, _, out = exported
    m = json.loads((out / "manifest.json").read_text())
    assert m["format"] == "haltingvt-manifest/1" and m["name"] == "micro"
    assert m["labels"] == ["a", "b", "c", "d", "e"] == (out / "labels.txt").read_text().split()
    assert m["input"]["frames"] == 4 and m["input"]["size"] == 48 and m["input"]["mean"] == [127.5] * 3
    assert [i["name"] for i in m["graph"]["inputs"]] == ["video", "keep_ratio", "halt_threshold", "merge_mode", "merge_ratio"]
    assert m["knobs"]["merge_mode"] == {"default": "none", "choices": ["none", "tome", "tldr"], "help": m["knobs"]["merge_mode"]["help"]}
    assert (m["knobs"]["merge_ratio"]["default"], m["knobs"]["merge_ratio"]["min"], m["knobs"]["merge_ratio"]["max"]) == (0.0, 0.0, 0.5)
    assert m["graph"]["outputs"][1] == {"name": "active_tokens", "dtype": "int64", "shape": ["batch", 4]}
    assert m["knobs"]["keep_ratio"]["default"] == 0.5 and m["knobs"]["halt_threshold"]["default"] == 0.99
    assert set(m["flops"]) >= {"frames", "patches", "dim", "mlp_hidden", "joint_blocks"}
    for name, info in m["files"].items():
        assert sha256(out / name) == info["sha256"]
    onnx.checker.check_model(str(out / "model.onnx"), full_check=True)


def test_paper_preset_builds_with_dynamic_token_dims():
    """The DeiT-S graph builds and checks (random weights, not run: too slow for CI on 2 cores)."""
    torch.manual_seed(0)
    from haltingvt import HaltingVT

    graph = build_graph(HaltingVT(preset("paper-minik-g05-b20")).eval())
    assert graph.graph.input[0].type.tensor_type.shape.dim[4].dim_value == 224


def test_parity_when_the_class_token_never_halts_early(tmp_path):
    cfg = preset("test-micro", quirk_cls_halts=False)
    model = random_model(cfg, seed=5)
    export_model(model, tmp_path, "cls-late")
    sess = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    video = random_video(cfg, 3, seed=4)
    logits, tokens, stop = sess.run(None, feeds(video.numpy(), 0.5, 0.9))
    with torch.no_grad():
        ref = model.forward_reference(video, 0.5, 0.9)
    assert np.abs(logits - ref.logits.numpy()).max() / np.abs(ref.logits.numpy()).max() < 1e-4
    assert np.array_equal(tokens, ref.active_tokens.numpy()) and np.array_equal(stop, ref.patch_stop_layer.numpy())


def test_parity_with_the_conv3d_stem(tmp_path):
    cfg = preset("test-micro", stem="conv3d", stem_channels=(8,), stem_kernels=(10, 3))  # overlapping, padded
    model = random_model(cfg, seed=6)
    export_model(model, tmp_path, "stem")
    sess = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    for batch, keep, thr in ((1, 1.0, 4.0), (3, 0.5, 0.9)):
        video = random_video(cfg, batch, seed=batch)
        logits, tokens, stop = sess.run(None, feeds(video.numpy(), keep, thr))
        with torch.no_grad():
            ref = model.forward_reference(video, keep, thr)
        assert np.abs(logits - ref.logits.numpy()).max() / np.abs(ref.logits.numpy()).max() < 1e-4
        assert np.array_equal(tokens, ref.active_tokens.numpy()) and np.array_equal(stop, ref.patch_stop_layer.numpy())


@pytest.fixture(scope="module")
def merging(tmp_path_factory):
    cfg = preset("test-micro")
    model = sharpen_attention(random_model(cfg, seed=3))  # vid-TLDR's saliency needs rows that are not uniform
    out = tmp_path_factory.mktemp("merging")
    export_model(model, out, "merging")
    return model, ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("mode", ["tome", "tldr"])
def test_merging_parity_over_batches_ratios_and_halting(merging, mode):
    """ONNX Runtime against the compact path (where merging lives): logits to 1e-4 relative, token
    counts and stop maps exact, batch 1-3, keep 0.5 and 1, ratios up to the maximum, halting on and off."""
    model, sess = merging
    worst = 0.0
    for batch, keep, thr, ratio in itertools.product((1, 2, 3), (0.5, 1.0), (0.9, 4.0), (0.1, 0.3, 0.5)):
        video = random_video(model.cfg, batch, seed=batch + 20)
        logits, tokens, stop = sess.run(None, feeds(video.numpy(), keep, thr, mode, ratio))
        with torch.no_grad():
            ref = model.forward_compact(video, keep, thr, mode, ratio)
        rel = np.abs(logits - ref.logits.numpy()).max() / np.abs(ref.logits.numpy()).max()
        worst = max(worst, rel)
        assert rel < 1e-4, (batch, keep, thr, ratio, rel)
        assert np.array_equal(tokens, ref.active_tokens.numpy()), (batch, keep, thr, ratio)
        assert np.array_equal(stop, ref.patch_stop_layer.numpy()), (batch, keep, thr, ratio)
        if thr > model.cfg.num_joint:  # no halting: every layer merges exactly merge_count tokens
            for n, nxt in zip(tokens[0], tokens[0][1:]):
                assert nxt == n - merge_count(int(n), ratio)
    print(f"{mode}: worst logits relative error {worst:.2e}")


def test_merge_mode_none_ignores_the_ratio_and_matches_the_reference(merging):
    model, sess = merging
    video = random_video(model.cfg, 2, seed=5)
    plain = sess.run(None, feeds(video.numpy(), 0.5, 0.9))
    off = sess.run(None, feeds(video.numpy(), 0.5, 0.9, "none", 0.5))
    for a, b in zip(plain, off):
        assert np.array_equal(a, b)
    with torch.no_grad():
        ref = model.forward_reference(video, 0.5, 0.9)
    assert np.abs(plain[0] - ref.logits.numpy()).max() / np.abs(ref.logits.numpy()).max() < 1e-4


def test_merged_batches_give_their_unbatched_results(merging):
    model, sess = merging
    video = random_video(model.cfg, 3, seed=6).numpy()
    logits, tokens, stop = sess.run(None, feeds(video, 0.5, 0.9, "tome", 0.3))
    for b in range(3):
        one = sess.run(None, feeds(video[b:b + 1], 0.5, 0.9, "tome", 0.3))
        assert np.abs(one[0] - logits[b:b + 1]).max() <= 1e-5 * np.abs(logits).max()
        assert np.array_equal(one[1][0], tokens[b]) and np.array_equal(one[2][0], stop[b])


@pytest.mark.parametrize("mode", ["tome", "tldr"])
def test_a_merging_layer_runs_its_mlp_on_the_tokens_the_merge_left(tmp_path, mode):
    """What flops.py counts (the MLP on n - r), read from ONNX Runtime's profile: the rows each joint
    layer's fc1 multiplied, against the tokens that entered it less the merge's count."""
    cfg = preset("test-micro")
    model = random_model(cfg, seed=3)
    opts = ort.SessionOptions()
    opts.enable_profiling = True
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keeps the nodes' names
    opts.profile_file_prefix = str(tmp_path / "merge")
    sess = ort.InferenceSession(build_graph(model).SerializeToString(), opts, providers=["CPUExecutionProvider"])
    ratio = 0.3
    _, tokens, _ = sess.run(None, feeds(random_video(cfg, 1, seed=1).numpy(), 1.0, 4.0, mode, ratio))
    events = json.loads(Path(sess.end_profiling()).read_text())
    rows = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["args"].get("op_name") == "MatMul":
            if m := re.match(r"joint(\d+)/joint\d+\.mlp\.fc1_", e["name"]):
                rows[int(m.group(1))] = e["args"]["input_type_shape"][0]["float"][1]
    entered = tokens[0].tolist()
    assert sorted(rows) == list(range(cfg.num_joint))
    assert [rows[i] for i in range(cfg.num_joint)] == [n - merge_count(n, ratio) for n in entered]
    assert all(merge_count(n, ratio) > 0 for n in entered)  # every layer merged: the check could fail


def test_merged_sums_are_the_same_at_any_thread_count():
    """Several sources merge into one destination: the merge's sums must not race when ONNX Runtime
    splits them over threads (ScatterND's add does, above ~2e5 elements; ScatterElements' does not).
    Batch 24 of 401 tokens at dim 64: ~3e5 elements per layer's sum, over that threshold."""
    cfg = preset("test-micro", img_size=160, embed_dim=64)
    graph = build_graph(random_model(cfg, seed=4)).SerializeToString()
    sess = {}
    for threads in (1, 4):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        sess[threads] = ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"])
    run = feeds(random_video(cfg, 24, seed=2).numpy(), 1.0, 4.0, "tome", 0.5)
    one = sess[1].run(None, run)
    for _ in range(5):
        many = sess[4].run(None, run)
        assert np.array_equal(many[1], one[1]) and np.array_equal(many[2], one[2])
        assert np.abs(many[0] - one[0]).max() <= 1e-5 * np.abs(one[0]).max()


def test_rehash_lists_a_report_added_later_but_refuses_a_changed_graph(tmp_path):
    import shutil

    from haltingvt.export import rehash

    src = tmp_path / "src"
    export_model(random_model(preset("test-micro"), seed=3), src, "micro")
    folder = tmp_path / "copy"
    shutil.copytree(src, folder)
    (folder / "eval").mkdir()
    (folder / "eval" / "test-results.json").write_text("{}\n")
    before = json.loads((folder / "manifest.json").read_text())
    doc = rehash(folder)
    assert doc["files"]["eval/test-results.json"]["sha256"] == sha256(folder / "eval" / "test-results.json")
    assert {k: v for k, v in doc.items() if k != "files"} == {k: v for k, v in before.items() if k != "files"}
    (folder / "model.onnx").write_bytes((folder / "model.onnx").read_bytes() + b"\0")
    with pytest.raises(ValueError, match="not the graph its manifest describes"):
        rehash(folder)


def test_weights_read_back_from_the_graph_are_the_models(exported):
    """read_back (what the benchmarks and the GPU check run PyTorch on) inverts the export, the softmax
    scale folded into the query rows included: same weights, same logits."""
    from haltingvt.export.read_back import model_from_onnx

    model, _, out = exported
    back, _ = model_from_onnx(out)
    original = model.state_dict()
    for key, value in back.state_dict().items():
        if key.startswith("fc_motion.") or key in ("cls_token", "pos_embed"):
            continue  # not in the graph / folded together there (their sum is checked through the logits)
        torch.testing.assert_close(value, original[key], rtol=1e-6, atol=1e-7, msg=key)
    video = random_video(model.cfg, 2, seed=5)
    with torch.no_grad():
        torch.testing.assert_close(back.forward_reference(video, 0.5, 0.9).logits, model.forward_reference(video, 0.5, 0.9).logits,
                                   rtol=1e-5, atol=1e-6)


def test_scalar_constants_are_rank_0():
    """Range's bounds and the Gather index of Builder.first must be scalars; ascontiguousarray once made
    every scalar constant shape (1,)."""
    from haltingvt.export.builder import Builder

    g = Builder()
    scalar, vector = g.const(0), g.const([0])
    dims = {i.name: list(i.dims) for i in g.initializers}
    assert scalar != vector and dims[scalar] == [] and dims[vector] == [1]
