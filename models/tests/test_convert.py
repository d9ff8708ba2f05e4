"""An authors'-format checkpoint (built here from random weights in their key layout) converts,
exports and matches the reference path."""

import numpy as np
import pytest
import torch

from haltingvt import preset
from haltingvt.checkpoint import load_checkpoint
from haltingvt.convert import CheckpointMismatch, convert_file, main as convert_main, ours_to_theirs
from haltingvt.export import export_model, feeds
from haltingvt.testing import random_model, random_video


def authors_checkpoint(path, model):
    state = {ours_to_theirs(k): v.clone() for k, v in model.state_dict().items()}
    torch.save({"meta": {"epoch": 20, "mmengine_version": "0.7.0"}, "state_dict": state}, path)
    return state


def test_their_key_layout():
    keys = {ours_to_theirs(k) for k in random_model(preset("test-micro")).state_dict()}
    assert "backbone.model.blocks.0.temporal_fc.weight" in keys
    assert "backbone.model.blocks.5.mlp.fc2.bias" in keys
    assert {"cls_head.fc_cls.weight", "cls_head.fc_motion.bias", "backbone.model.time_embed"} <= keys


def test_converted_checkpoint_exports_and_matches_the_reference(tmp_path):
    cfg = preset("test-micro")
    original = random_model(cfg, seed=11)
    authors_checkpoint(tmp_path / "theirs.pth", original)
    assert convert_main(["--checkpoint", str(tmp_path / "theirs.pth"), "--preset", "test-micro",
                         "--out", str(tmp_path / "ours.pt")]) == 0
    model, _ = load_checkpoint(tmp_path / "ours.pt")
    for key, value in original.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    export_model(model, tmp_path / "export", "converted")

    import onnxruntime as ort

    sess = ort.InferenceSession(str(tmp_path / "export" / "model.onnx"), providers=["CPUExecutionProvider"])
    video = random_video(cfg, 2, seed=1)
    logits, tokens, _ = sess.run(None, feeds(video.numpy(), 0.5, 0.99))
    with torch.no_grad():
        ref = original.forward_reference(video, 0.5, 0.99)
    assert np.abs(logits - ref.logits.numpy()).max() / np.abs(ref.logits.numpy()).max() < 1e-4
    assert np.array_equal(tokens, ref.active_tokens.numpy())


def test_mismatch_lists_every_missing_unexpected_and_misshaped_key(tmp_path):
    model = random_model(preset("test-micro"))
    state = authors_checkpoint(tmp_path / "x.pth", model)
    del state["backbone.model.norm.weight"], state["cls_head.fc_motion.bias"]
    state["backbone.model.blocks.3.gamma"] = torch.zeros(1)
    state["backbone.model.blocks.2.attn.proj.bias"] = torch.zeros(7)
    torch.save({"state_dict": state}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointMismatch) as err:
        convert_file(tmp_path / "bad.pth", preset("test-micro"))
    text = str(err.value)
    assert "2 missing, 1 unexpected, 1 mis-shaped" in text
    for key in ("backbone.model.norm.weight", "cls_head.fc_motion.bias", "blocks.3.gamma", "blocks.2.attn.proj.bias"):
        assert key in text


def test_config_comes_from_the_tensors(tmp_path):
    cfg = preset("test-micro").replace(num_frames=6, num_classes=7)
    authors_checkpoint(tmp_path / "t.pth", random_model(cfg))
    model = convert_file(tmp_path / "t.pth", preset("test-micro"))
    assert (model.cfg.num_frames, model.cfg.num_classes) == (6, 7)
