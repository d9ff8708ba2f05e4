import json
from pathlib import Path

import pytest

from haltingvt import PRESETS, HaltingVTConfig, kept_patches, preset
from haltingvt.config import stem_stages

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def test_paper_preset_matches_the_authors_config():
    cfg = preset("paper-minik-g05-b20")
    assert (cfg.embed_dim, cfg.num_heads, cfg.num_glimpser, cfg.num_joint) == (384, 6, 2, 10)
    assert (cfg.num_frames, cfg.img_size, cfg.patch_size) == (8, 224, 16)
    assert cfg.glimpser_keep == (1.0, 0.5)
    assert (cfg.halt_scale, cfg.halt_center, cfg.halt_eps, cfg.num_classes) == (10.0, 20.0, 0.01, 200)
    assert cfg.mean == cfg.std == (127.5, 127.5, 127.5)  # Q10: [-1, 1]


def test_all_eight_author_configs_exist():
    expected = {("minik", 0.3, 5.0, 8), ("minik", 0.3, 10.0, 8), ("minik", 0.5, 20.0, 8), ("minik", 0.7, 20.0, 8),
                ("anet", 0.3, 10.0, 10), ("anet", 0.5, 10.0, 10), ("anet", 0.5, 20.0, 10), ("anet", 0.7, 20.0, 10)}
    found = {(n.split("-")[1], c.glimpser_keep[1], c.halt_center, c.num_frames)
             for n, c in PRESETS.items() if n.startswith("paper-")}
    assert found == expected


def test_small_preset_keeps_the_full_architecture():
    cfg = preset("motion-tiny")
    assert cfg.num_glimpser == 2 and cfg.num_joint >= 2 and cfg.num_frames == 8


def test_config_round_trips_through_dict():
    cfg = preset("motion-tiny", labels=tuple(f"c{i}" for i in range(12)))
    assert HaltingVTConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_bad_config_fails_with_a_message():
    with pytest.raises(AssertionError, match="divisible"):
        HaltingVTConfig(embed_dim=100, num_heads=6)
    with pytest.raises(KeyError, match="unknown preset"):
        preset("nope")
    with pytest.raises(AssertionError, match="need stem='conv3d'"):
        HaltingVTConfig(stem_channels=(8,))
    with pytest.raises(AssertionError, match="need stem='conv3d'"):
        HaltingVTConfig(stem_kernels=(16,))
    with pytest.raises(AssertionError, match="does not split into 6 stages"):
        HaltingVTConfig(stem="conv3d", stem_channels=(8, 8, 8, 8, 8))
    with pytest.raises(AssertionError, match="one kernel per stage"):
        HaltingVTConfig(stem="conv3d", stem_channels=(8,), stem_kernels=(8,))
    with pytest.raises(AssertionError, match="smaller than the strides"):
        HaltingVTConfig(stem="conv3d", stem_channels=(8,), stem_kernels=(8, 1))
    with pytest.raises(AssertionError, match="does not keep the token grid"):  # stride 1 with an even kernel
        HaltingVTConfig(stem="conv3d", stem_channels=(8, 8, 8, 8), stem_kernels=(2, 2, 2, 2, 2))


def test_stem_stages_keep_the_token_grid_for_any_kernel():
    for kernels in ((), (4, 2, 2), (5, 3, 3), (8, 3, 3), (11, 4, 6)):
        stages = stem_stages(preset("motion-tiny", stem_kernels=kernels))
        assert [st.stride for st in stages] == [4, 2, 2]
        assert [st.kernel for st in stages] == list(kernels or (4, 2, 2))
        side = 112
        for st in stages:
            side = (side + 2 * st.pad - st.kernel) // st.stride + 1
        assert side == 7, kernels


def test_configs_saved_before_stem_kernels_mean_non_overlapping_kernels():
    saved = preset("motion-tiny").to_dict()
    del saved["stem_kernels"]  # what a 2.0.0 checkpoint or manifest holds
    old = HaltingVTConfig.from_dict(saved)
    assert old.stem_kernels == () and [st.kernel for st in stem_stages(old)] == [4, 2, 2]


def test_kept_patches_matches_golden_and_the_authors_counts():
    assert [kept_patches(k, 196) for k in (0.3, 0.5, 0.7)] == [59, 98, 138]
    for case in json.loads((GOLDEN / "kept_patches.json").read_text())["cases"]:
        assert kept_patches(case["keep"], case["patches"]) == case["kept"], case
