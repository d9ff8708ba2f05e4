"""A short training run reduces the loss; evaluation runs on a tiny split of real video files."""

import json

import numpy as np
import pytest
import torch

from haltingvt.checkpoint import load_checkpoint
from haltingvt.evaluate import Runner, load_clips, main as eval_main, markdown, run
from haltingvt.synth.stream import to_tensor
from haltingvt.train import TrainConfig, lr_at, parse, train

MICRO = dict(preset="test-micro", train_resize=(55, 64), workers=0, threads=2, lr=2e-3, warmup_steps=5,
             save_every=1000)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    result = train(TrainConfig(out=str(out), steps=60, batch_size=8, train_clips=16, **MICRO), progress=False)
    return out, result


def test_short_run_reduces_the_loss(trained):
    out, result = trained
    history = json.loads((out / "history.json").read_text())
    first = np.mean([h["task"] for h in history[:8]])
    last = np.mean([h["task"] for h in history[-8:]])
    assert last < 0.8 * first, (first, last)
    assert set(history[0]) >= {"task", "ponder", "motion", "tokens"}
    assert result["steps"] == 60


def test_checkpoint_resumes_where_it_stopped(trained, tmp_path):
    out, _ = trained
    model, payload = load_checkpoint(out / "last.pt")
    assert payload["meta"]["step"] == 60 and "optimizer" in payload
    result = train(TrainConfig(out=str(tmp_path), steps=62, batch_size=8, train_clips=16, resume=str(out / "last.pt"),
                               **MICRO), progress=False)
    assert result["steps"] == 62
    assert len(json.loads((tmp_path / "history.json").read_text())) == 2


def test_schedule_warms_up_then_decays():
    tc = TrainConfig(steps=100, warmup_steps=10, lr=1.0)
    assert lr_at(0, tc) == pytest.approx(0.1) and lr_at(10, tc) == pytest.approx(1.0)
    assert lr_at(55, tc) == pytest.approx(0.5) and lr_at(100, tc) == pytest.approx(0.0, abs=1e-12)


def test_cli_parses_tuples_and_overrides():
    tc, quiet = parse(["--keep-choices", "0.3,0.5", "--train-resize", "55,64", "--halt-center", "4", "--quiet"])
    assert tc.keep_choices == (0.3, 0.5) and tc.train_resize == (55, 64) and tc.halt_center == 4.0 and quiet


def test_eval_on_a_tiny_split_of_video_files(trained, tmp_path):
    from haltingvt.synth.cli import main as synth_main

    out, _ = trained
    assert synth_main(["--out", str(tmp_path / "split"), "--count", "6", "--seed", "1500", "--resolutions", "96x64"]) == 0
    assert eval_main(["--checkpoint", str(out / "final.pt"), "--data", str(tmp_path / "split"), "--sweep",
                      "--out", str(tmp_path / "eval"), "--quiet", "--threads", "2"]) == 0
    report = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert report["clips"] == 6
    # The reported top-1 is the share of the split's clips whose argmax is their label, recounted here
    # from the checkpoint's own answers at the reported keep and threshold.
    model, _ = load_checkpoint(out / "final.pt")
    clips, labels = load_clips(model.cfg, str(tmp_path / "split"), 0, seed=0, progress=False)
    default = report["default"]
    with torch.no_grad():
        logits = model.eval().forward_compact(to_tensor(clips), default["keep"], default["threshold"]).logits
    assert default["top1"] == pytest.approx(float(np.mean(logits.argmax(-1).numpy() == labels)))
    assert report["dense"]["gflops"] > report["default"]["gflops"]
    assert len(report["sweep"]) == 10 and (tmp_path / "eval" / "accuracy_vs_gflops.png").stat().st_size > 1000
    assert "| 0.3 | off |" in (tmp_path / "eval" / "sweep.md").read_text()


def test_eval_scores_a_head_that_always_answers_one_class_at_that_class_share(trained):
    """A head whose logits ignore the video (zero weights, bias picking one class) scores exactly the
    share of clips with that label, top-1 and on static clips alike, so a miscount shows."""
    model, _ = load_checkpoint(trained[0] / "final.pt")
    clips, labels = load_clips(model.cfg, "synth", 8, seed=1200, progress=False)
    assert len(set(labels.tolist())) > 1  # else a right and a wrong count could agree
    answer = int(labels[0])
    with torch.no_grad():
        model.fc_cls.weight.zero_()
        model.fc_cls.bias.copy_(torch.nn.functional.one_hot(torch.tensor(answer), model.cfg.num_classes).float())
    broken = run(Runner.of(model), clips, labels, 0.5, 0.99)
    share = float(np.mean(labels == answer))
    assert 0 < share < 1 and broken.top1 == pytest.approx(share) and broken.static_top1 == pytest.approx(share)


def test_training_seeds_are_refused_for_evaluation(trained):
    model, _ = load_checkpoint(trained[0] / "final.pt")
    with pytest.raises(AssertionError, match="training seed"):
        load_clips(model.cfg, "synth", 2, seed=3, progress=False)


def test_evaluation_counts_gflops_from_tokens(trained):
    model, _ = load_checkpoint(trained[0] / "final.pt")
    clips, labels = load_clips(model.cfg, "synth", 4, seed=1200, progress=False)
    dense = run(Runner.of(model), clips, labels, 1.0, 4.0)
    assert dense.tokens_per_layer == [37.0] * 4
    assert "| 1 | off |" in markdown([dense], dense.gflops)


def test_training_decode_of_a_user_video_is_random_but_reproducible():
    from pathlib import Path

    from haltingvt.data import Sampling, decode_train_clip
    from haltingvt.video import sampling_filter

    clip = Path(__file__).resolve().parents[1] / "golden" / "frames" / "landscape.mp4"
    s = Sampling(8, 112, 128, (128, 160))
    a = decode_train_clip(clip, s, np.random.default_rng(1))
    assert a.shape == (8, 112, 112, 3)
    assert np.array_equal(a, decode_train_clip(clip, s, np.random.default_rng(1)))
    assert not np.array_equal(a, decode_train_clip(clip, s, np.random.default_rng(2)))
    assert sampling_filter([0], 112, 128, (0.5, 0.5)).count("*0.5") == 2


def test_scene_ramp_by_clip_index():
    from haltingvt.data import SceneRamp

    ramp = SceneRamp(clean_until=10, full_from=30)
    assert [ramp(i) for i in (0, 10, 20, 30, 1000)] == [0.0, 0.0, 0.5, 1.0, 1.0]
    assert SceneRamp()(0) == 1.0  # no curriculum: the full benchmark from the first clip


def test_few_static_clips_and_the_scene_curriculum_train(tmp_path):
    tc = TrainConfig(out=str(tmp_path), steps=5, stop_at=3, batch_size=4, static_clips=2, clean_steps=1,
                     full_scene_step=2, prune_start=1, halt_start=2, keep_choices=(0.5,), embed_init="sincos", **MICRO)
    result = train(tc, progress=False)
    history = json.loads((tmp_path / "history.json").read_text())
    assert result["steps"] == 3 and len(history) == 3 and history[-1]["ponder"] > 0
    model, payload = load_checkpoint(tmp_path / "last.pt")
    assert payload["meta"]["step"] == 3 and model.cfg.embed_init == "sincos"


def test_from_scratch_init_tells_frames_and_positions_apart():
    import torch

    from haltingvt.config import preset
    from haltingvt.model import HaltingVT

    def min_row_distance(table):
        return float(torch.cdist(table, table).add(torch.eye(len(table)) * 1e9).min())

    fresh = HaltingVT(preset("motion-tiny", embed_init="sincos"))
    assert min_row_distance(fresh.time_embed[0].detach()) > 0.1  # frame order is visible from step 0
    assert min_row_distance(fresh.pos_embed[0, 1:].detach()) > 0.1
    authors = HaltingVT(preset("test-micro"))  # the authors' init: time starts at zero
    assert float(authors.time_embed.abs().max()) == 0.0


def test_eval_of_the_exported_folder_agrees_with_the_checkpoint(trained, tmp_path):
    """`eval --model FOLDER` runs the served graph (ONNX Runtime): same clips, same answers and tokens
    as the PyTorch checkpoint it was exported from."""
    from haltingvt.export import export_model

    out, _ = trained
    model, _ = load_checkpoint(out / "final.pt")
    export_model(model, tmp_path / "exported", "tiny")
    clips, labels = load_clips(model.cfg, "synth", 6, seed=1300, progress=False)
    torch_run = run(Runner.of(model), clips, labels, 0.5, 0.99)
    onnx_run = run(Runner.load(str(tmp_path / "exported"), threads=1), clips, labels, 0.5, 0.99)
    assert (onnx_run.top1, onnx_run.top5, onnx_run.static_top1) == (torch_run.top1, torch_run.top5, torch_run.static_top1)
    assert onnx_run.tokens_per_layer == pytest.approx(torch_run.tokens_per_layer)
    assert onnx_run.gflops == pytest.approx(torch_run.gflops) and onnx_run.motion_acc is None
    assert onnx_run.clips == 6 and onnx_run.top1_interval[0] <= onnx_run.top1 <= onnx_run.top1_interval[1]
