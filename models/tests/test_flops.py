import json
from pathlib import Path

import pytest

from haltingvt import preset
from haltingvt.flops import FlopsConstants, gflops, video_macs
from haltingvt.flops_cli import main as flops_main

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def test_dense_paper_model_is_55_50_gflops():
    assert round(gflops(preset("paper-minik-g05-b20"), 1.0), 2) == 55.50


@pytest.mark.parametrize("keep,expected", [(0.3, 17.63), (0.5, 26.53), (0.7, 37.21)])
def test_glimpser_only_matches_the_paper_arithmetic(keep, expected):
    assert round(gflops(preset("paper-minik-g05-b20"), keep), 2) == expected


def test_ten_frame_configs():
    cfg = preset("paper-anet-g05-b20")
    assert [round(gflops(cfg, k), 2) for k in (1.0, 0.3, 0.5, 0.7)] == [75.28, 22.57, 34.64, 49.44]


def test_halting_only_counts_active_tokens():
    cfg = preset("paper-minik-g05-b20")
    full = gflops(cfg, 0.5)
    halted = gflops(cfg, 0.5, [785, 400, 200, 0, 0, 0, 0, 0, 0, 0])
    assert halted < full / 2
    # one joint layer at n tokens: 12 n D^2 + 2 n^2 D multiply-adds
    one = gflops(cfg, 0.5, [785] + [0] * 9) - gflops(cfg, 0.5, [0] * 10)
    assert one == pytest.approx((12 * 785 * 384 ** 2 + 2 * 785 ** 2 * 384) / 1e9)


def test_golden_cases_match_the_formula():
    for case in json.loads((GOLDEN / "flops.json").read_text())["cases"]:
        k = FlopsConstants.from_dict(case["constants"])
        assert video_macs(k, case["kept_per_frame"], case["active_tokens"]) == case["macs"], case["preset"]


def test_cli_prints_the_total(capsys):
    assert flops_main(["--preset", "paper-minik-g05-b20", "--keep", "0.3"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].split()[-1] == "17.63"


def test_conv3d_stem_macs_match_a_count_of_the_convolutions_that_ran():
    import torch

    from haltingvt.model import HaltingVT
    from haltingvt.testing import random_video

    cfg = preset("test-micro", stem="conv3d", stem_channels=(8, 16), stem_kernels=(6, 3, 3))
    model, counted = HaltingVT(cfg), []
    for conv in model.patch_embed.convs:
        if isinstance(conv, torch.nn.Conv3d):
            conv.register_forward_hook(lambda m, i, out: counted.append(
                out[0].numel() * m.in_channels * m.kernel_size[0] * m.kernel_size[1] * m.kernel_size[2]))
    with torch.no_grad():
        model.embed(random_video(cfg, 1))
    k = FlopsConstants.of(cfg)
    assert len(counted) == 3 and k.embed_macs == sum(counted)
    assert k.embed_macs != FlopsConstants.of(preset("test-micro")).embed_macs
    assert k.embed_macs > FlopsConstants.of(cfg.replace(stem_kernels=())).embed_macs  # wider kernels cost more
    assert FlopsConstants.of(preset("test-micro")).embed_macs == 4 * 9 * 3 * 16 * 16 * 32  # T*P*patch_dim*D


def test_manifests_without_embed_macs_mean_the_patch_projection():
    k = FlopsConstants.of(preset("paper-minik-g05-b20"))
    old = {name: value for name, value in k.to_dict().items() if name != "embed_macs"}
    assert FlopsConstants.from_dict(old) == k
