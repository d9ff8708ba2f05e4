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
        k = FlopsConstants(**case["constants"])
        assert video_macs(k, case["kept_per_frame"], case["active_tokens"]) == case["macs"], case["preset"]


def test_cli_prints_the_total(capsys):
    assert flops_main(["--preset", "paper-minik-g05-b20", "--keep", "0.3"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].split()[-1] == "17.63"
