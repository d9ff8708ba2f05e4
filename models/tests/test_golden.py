"""The committed golden files are what the code computes today."""

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort

from haltingvt.export import feeds
from haltingvt.golden import flops_cases, merging_cases
from haltingvt.sampling import segment_centre_indices

ROOT = Path(__file__).resolve().parents[1]


def test_flops_golden_is_current():
    assert json.loads((ROOT / "golden" / "flops.json").read_text())["cases"] == flops_cases()


def test_merging_golden_is_current():
    assert json.loads((ROOT / "golden" / "merging.json").read_text()) == merging_cases()


def test_sampling_golden_is_current_and_sane():
    for case in json.loads((ROOT / "golden" / "sampling.json").read_text())["cases"]:
        idx = segment_centre_indices(case["n"], case["frames"])
        assert idx == case["indices"]
        assert idx == sorted(idx) and 0 <= idx[0] and idx[-1] < case["n"]
    assert segment_centre_indices(80, 8) == [5, 15, 25, 35, 45, 55, 65, 75]


def test_tiny_fixture_reproduces_its_parity_cases():
    doc = json.loads((ROOT / "golden" / "parity_tiny" / "expected.json").read_text())
    video = np.fromfile(ROOT / "golden" / "parity_tiny" / doc["input"], dtype="<f4").reshape(doc["input_shape"])
    sess = ort.InferenceSession(str(ROOT / "fixtures" / "tiny" / "model.onnx"), providers=["CPUExecutionProvider"])
    for case in doc["cases"]:
        logits, tokens, stop = sess.run(None, feeds(video, case["keep_ratio"], case["halt_threshold"],
                                                    case["merge_mode"], case["merge_ratio"]))
        ref = np.array(case["logits"])
        assert np.abs(logits - ref).max() / np.abs(ref).max() < 1e-4
        assert tokens.tolist() == case["active_tokens"] and stop.tolist() == case["patch_stop_layer"]


def test_python_decoder_reproduces_the_committed_frames():
    from haltingvt.video import sample_video

    doc = json.loads((ROOT / "golden" / "frames" / "expected.json").read_text())
    for case in doc["cases"]:
        got = sample_video(ROOT / "golden" / "frames" / case["video"], case["frames"], case["size"], case["resize_short_side"])
        want = np.fromfile(ROOT / "golden" / "frames" / case["frames_file"], np.uint8).reshape(case["shape"])
        diff = np.abs(got.astype(int) - want.astype(int))
        assert diff.mean() < 0.5 and diff.max() <= 8, (case["video"], diff.mean(), diff.max())
