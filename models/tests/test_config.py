import json
from pathlib import Path

import pytest

from haltingvt import PRESETS, HaltingVTConfig, kept_patches, preset

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
    with pytest.raises(AssertionError, match="needs stem='conv3d'"):
        HaltingVTConfig(stem_channels=(8,))
    with pytest.raises(AssertionError, match="does not split into 6 stages"):
        HaltingVTConfig(stem="conv3d", stem_channels=(8, 8, 8, 8, 8))


def test_kept_patches_matches_golden_and_the_authors_counts():
    assert [kept_patches(k, 196) for k in (0.3, 0.5, 0.7)] == [59, 98, 138]
    for case in json.loads((GOLDEN / "kept_patches.json").read_text())["cases"]:
        assert kept_patches(case["keep"], case["patches"]) == case["kept"], case
