"""The committed default model, served as ONNX: its committed test report meets the target, and a
fresh sample from the test namespace, rendered here, agrees with that report within its noise, at a
fraction of the dense cost, and really needs motion."""

import json
from pathlib import Path

import numpy as np
import pytest

from haltingvt.export import feeds, sha256
from haltingvt.flops import FlopsConstants, video_macs
from haltingvt.splits import SPLITS
from haltingvt.synth.scenes import TEST_SEEDS
from haltingvt.synth.split import write_split
from haltingvt.synth.stream import to_tensor
from haltingvt.video import sample_video

ort = pytest.importorskip("onnxruntime")
DEFAULT = Path(__file__).resolve().parents[1] / "default"
FRESH_SEED = 3002  # test namespace, and not the committed test split (3001): a fresh replication
FRESH_COUNT = 48
assert FRESH_SEED in TEST_SEEDS and FRESH_SEED != SPLITS["test"].seed
TEST_REPORT = DEFAULT / "eval" / "test-results.json"


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    out = tmp_path_factory.mktemp("fresh")
    rows = write_split(out, count=FRESH_COUNT, seed=FRESH_SEED, resolutions=((320, 240), (240, 320), (426, 240)), workers=2)
    manifest = json.loads((DEFAULT / "manifest.json").read_text())
    spec = manifest["input"]
    clips = np.stack([sample_video(out / r["path"], spec["frames"], spec["size"], spec["resize_short_side"]) for r in rows])
    labels = np.array([manifest["labels"].index(r["label"]) for r in rows])
    sess = ort.InferenceSession(str(DEFAULT / "model.onnx"), providers=["CPUExecutionProvider"])
    return manifest, sess, clips, labels


def run(manifest, sess, clips, keep, threshold):
    logits, tokens, _ = sess.run(None, feeds(to_tensor(clips).numpy(), keep, threshold))
    k = FlopsConstants.from_dict(manifest["flops"])
    kept = int(np.ceil(np.float32(keep) * np.float32(k.patches))) if keep < 1 else k.patches
    gflops = np.mean([video_macs(k, kept, t) for t in tokens.tolist()]) / 1e9
    return logits.argmax(-1), gflops


def test_files_match_the_manifest():
    manifest = json.loads((DEFAULT / "manifest.json").read_text())
    for name, info in manifest["files"].items():
        assert sha256(DEFAULT / name) == info["sha256"], name
    assert sum((DEFAULT / n).stat().st_size for n in manifest["files"]) <= 15 * 1024 * 1024


def test_cost_with_the_default_knobs_is_at_most_half_of_dense(fresh):
    manifest, sess, clips, labels = fresh
    knobs = manifest["knobs"]
    _, gflops = run(manifest, sess, clips, knobs["keep_ratio"]["default"], knobs["halt_threshold"]["default"])
    assert gflops <= 0.5 * manifest["dense_gflops"], (gflops, manifest["dense_gflops"])


def test_the_committed_test_report_meets_the_target():
    """The figures the README and model card give: >= 95% top-1 on the test split at the default knobs,
    for <= 50% of the dense GFLOPs, near chance on static clips (one frame repeated)."""
    manifest = json.loads((DEFAULT / "manifest.json").read_text())
    report = json.loads(TEST_REPORT.read_text())
    split, default = SPLITS["test"], report["default"]
    assert (report["split"], report["clips"]) == ("test", split.count)
    assert (default["keep"], default["threshold"]) == (manifest["knobs"]["keep_ratio"]["default"],
                                                       manifest["knobs"]["halt_threshold"]["default"])
    assert default["top1"] >= 0.95 and default["gflops"] <= 0.5 * manifest["dense_gflops"]
    assert default["static_top1"] < 2 / len(manifest["labels"])


def test_a_fresh_test_sample_agrees_with_the_committed_report(fresh):
    """A guard on what ships: 48 clips of another test seed, through the exported graph, score no more
    than 4 standard deviations (of a 48-clip proportion) below the committed test figure. A broken
    export, decoder or label order falls far below; another encoder build flipping a clip does not."""
    manifest, sess, clips, labels = fresh
    knobs = manifest["knobs"]
    reported = json.loads(TEST_REPORT.read_text())["default"]["top1"]
    pred, _ = run(manifest, sess, clips, knobs["keep_ratio"]["default"], knobs["halt_threshold"]["default"])
    floor = reported - 4 * np.sqrt(reported * (1 - reported) / FRESH_COUNT)
    assert float((pred == labels).mean()) >= floor, (float((pred == labels).mean()), floor)


def test_static_clips_score_near_chance(fresh):
    manifest, sess, clips, labels = fresh
    static = np.repeat(clips[:, :1], clips.shape[1], axis=1)  # one frame repeated
    pred, _ = run(manifest, sess, static, manifest["knobs"]["keep_ratio"]["default"], 0.99)
    assert float((pred == labels).mean()) < 0.3  # chance is 1/12


def test_answers_at_the_default_knobs_are_those_of_before_merging():
    """golden/default_answers.json holds what motion-tiny 3.1.0 (no merge inputs) answered at its
    default knobs; with merging off the graph must give the same logits, tokens and stop layers."""
    from haltingvt.synth import stream

    doc = json.loads((DEFAULT.parent / "golden" / "default_answers.json").read_text())
    manifest = json.loads((DEFAULT / "manifest.json").read_text())
    assert manifest["knobs"]["merge_mode"]["default"] == "none"
    assert (doc["keep_ratio"], doc["halt_threshold"]) == (manifest["knobs"]["keep_ratio"]["default"],
                                                          manifest["knobs"]["halt_threshold"]["default"])
    spec = manifest["input"]
    clips = np.stack([stream.make_eval_clip(doc["seed"], i, spec["frames"], spec["size"], spec["resize_short_side"])[0]
                      for i in range(doc["clips"])])
    sess = ort.InferenceSession(str(DEFAULT / "model.onnx"), providers=["CPUExecutionProvider"])
    logits, tokens, stop = sess.run(None, feeds(to_tensor(clips).numpy(), doc["keep_ratio"], doc["halt_threshold"],
                                                manifest["knobs"]["merge_mode"]["default"], manifest["knobs"]["merge_ratio"]["default"]))
    expected = np.array(doc["logits"], np.float32)
    assert np.abs(logits - expected).max() <= 1e-6 * np.abs(expected).max()
    assert tokens.tolist() == doc["active_tokens"] and stop.reshape(len(clips), -1).sum(-1).tolist() == doc["patch_stop_layer_sum"]


def test_the_seed_study_is_the_committed_table_and_the_shipped_model_is_its_median():
    """docs/model-card.md's seed table is eval/seed-study.md, rendered from eval/seeds/ (seed-study.sh's
    per-seed reports); the shipped model is seed 1 of that study and the recipe's median seed on test."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("seed_table", DEFAULT.parent / "scripts" / "seed_table.py")
    seed_table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(seed_table)
    rows = seed_table.rows(DEFAULT / "eval" / "seeds")
    assert [r["seed"] for r in rows] == [0, 1, 2]
    assert all(r["clips"] == SPLITS["test"].count for r in rows)
    assert (DEFAULT / "eval" / "seed-study.md").read_text() == seed_table.render(rows)
    shipped = json.loads(TEST_REPORT.read_text())["default"]
    assert next(r for r in rows if r["seed"] == 1)["test"] == shipped["top1"]
    assert seed_table.summary(rows)["median_seed"] == 1
