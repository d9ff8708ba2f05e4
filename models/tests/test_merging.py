"""Token merging (haltingvt/merging.py): the decisions by hand and against golden/merging.json, what
merging means for the class token, padding, halted tokens and sizes, and the model's compact path."""

import json
import math
from pathlib import Path

import pytest
import torch

from haltingvt import preset
from haltingvt.flops import FlopsConstants, merged_joint_macs, video_macs
from haltingvt.halting import NEG_INF
from haltingvt.layers import Attention
from haltingvt.merging import (MAX_MERGE_RATIO, match, merge_count, merge_counts, merge_macs, merge_mode_index,
                               merge_step, pick_sources, sharpness_saliency)
from haltingvt.testing import random_model, random_video

GOLDEN = json.loads((Path(__file__).resolve().parents[1] / "golden" / "merging.json").read_text())


def test_merge_count_golden_and_its_bounds():
    for case in GOLDEN["counts"]:
        assert merge_count(case["live"], case["ratio"]) == case["merged"], case
        patches = max(case["live"] - 1, 0)
        assert 0 <= case["merged"] <= patches // 2
    assert merge_count(201, 0.25) == 50 and merge_count(201, 0.5) == 100 and merge_count(1, 0.5) == 0
    assert merge_count(11, 0.3) == 3  # float32(0.3) * 10 = 3.0000001: floor 3, as the graph computes
    live = torch.tensor([c["live"] for c in GOLDEN["counts"] if c["ratio"] == 0.3])
    assert merge_counts(live, 0.3).tolist() == [c["merged"] for c in GOLDEN["counts"] if c["ratio"] == 0.3]


def test_merge_cost_golden_and_convention():
    for case in GOLDEN["costs"]:
        assert merge_macs(case["live"], case["mode"], case["ratio"], case["dim"], case["dim"] // case["heads"]) == case["macs"]
    # 201 live: 200 patches, 100 source candidates x 100 destinations, head-mean keys 32 wide
    assert merge_macs(201, "tome", 0.25, 128, 32) == 100 * 100 * 32
    assert merge_macs(201, "tldr", 0.25, 128, 32) == 100 * 100 * 128 + 201 * 202  # hidden-state metric + sum a log a
    assert merge_macs(201, "none", 0.25, 128, 32) == 0 and merge_macs(201, "tome", 0.0, 128, 32) == 0


def test_video_flops_golden_and_the_mlp_runs_on_the_merged_tokens():
    for case in GOLDEN["videos"]:
        k = FlopsConstants.from_dict(case["constants"])
        assert video_macs(k, case["kept_per_frame"], case["active_tokens"], case["merge_mode"], case["merge_ratio"]) == case["macs"]
        assert [merged_joint_macs(k, n, case["merge_mode"], case["merge_ratio"]) for n in case["active_tokens"]] == case["joint_macs"]
    k = FlopsConstants.of(preset("motion-tiny"))
    D, H = k.dim, k.mlp_hidden
    plain, merged = merged_joint_macs(k, 201, "none", 0.25), merged_joint_macs(k, 201, "tome", 0.25)
    assert plain - merged == 50 * 2 * D * H - 100 * 100 * (D // k.heads)  # 50 fewer MLP rows, plus the matching


def test_unknown_mode_is_refused():
    assert merge_mode_index("tome") == 1 and merge_mode_index("tldr") == 2
    with pytest.raises(ValueError, match="merge_mode"):
        merge_mode_index("fast")


def test_match_never_pairs_the_class_token_or_padding():
    metric = torch.ones(1, 6, 4)  # every token identical: any pair would do
    live = torch.tensor([[True, True, True, True, False, False]])  # 4 live, 2 padding
    patch = live & (torch.arange(6) > 0)
    best, dest = match(metric, patch)  # A = positions 1, 3, 5; B = 0, 2, 4
    assert best[0, 2] < -1e9 + 1 and best[0, 0] == pytest.approx(1.0) and best[0, 1] == pytest.approx(1.0)
    assert dest[0, :2].tolist() == [1, 1]  # both to position 2: never to the class token (0) nor padding (4)


def test_pick_sources_takes_the_r_best_ties_to_the_lower_index():
    best = torch.tensor([[0.5, 0.9, 0.5, 0.1], [0.2, 0.2, 0.2, 0.2]])
    assert pick_sources(best, torch.tensor([2, 3])).tolist() == [[True, True, False, False], [True, True, True, False]]


def tokens(values):
    x = torch.tensor(values, dtype=torch.float32)[None, :, None].repeat(1, 1, 2)  # (1, M, 2)
    M = x.shape[1]
    return x, torch.ones(1, M), torch.zeros(1, M), torch.arange(M)[None], torch.ones(1, M, dtype=torch.bool)


def test_merge_step_averages_by_size_and_keeps_the_class_token_first():
    x, size, c, ids, live = tokens([9.0, 1.0, 3.0, 5.0, 7.0])  # A = 1, 3; B = 0 (class), 2, 4
    c[0, 3] = 0.6
    metric = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 1.0], [1.0, 0.0]]])  # 1 ~ 2; 3 ~ 2 and 4
    x2, size2, c2, ids2, live2 = merge_step(x, size, c, ids, live, metric, torch.tensor([2]), None)
    assert ids2.tolist() == [[0, 2, 4, 1, 3]] and live2.tolist() == [[True, True, True, False, False]]
    assert x2[0, 0, 0] == 9.0 and size2[0, 0] == 1.0  # the class token: untouched
    assert size2[0, 1] + size2[0, 2] == 4.0  # two tokens absorbed: the mass is conserved
    merged = x2[0, 1:3, 0] * size2[0, 1:3]
    assert merged.sum() == pytest.approx(1.0 + 3.0 + 5.0 + 7.0)  # size-weighted content conserved
    assert (c2[0, 1:3] * size2[0, 1:3]).sum() == pytest.approx(0.6)  # halting scores averaged like content


def test_a_merged_token_brings_its_size():
    x, size, c, ids, live = tokens([9.0, 1.0, 3.0])  # A = 1; B = 0 (class), 2
    size[0, 1] = 3.0  # token 1 already stands for three tokens
    x2, size2, *_ = merge_step(x, size, c, ids, live, torch.ones(1, 3, 2), torch.tensor([1]), None)
    assert size2[0, 1] == 4.0 and x2[0, 1, 0] == pytest.approx((3 * 1.0 + 3.0) / 4)


def test_tldr_drops_background_sources_and_keeps_foreground_mass():
    x, size, c, ids, live = tokens([9.0, 1.0, 3.0, 5.0, 7.0])
    metric = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]]])  # 1 and 3 both to 2
    saliency = torch.tensor([[0.0, 0.0, 0.5, 1.0, 0.0]])  # token 1 background, token 3 foreground
    x2, size2, _, ids2, live2 = merge_step(x, size, c, ids, live, metric, torch.tensor([2]), saliency)
    assert live2.tolist() == [[True, True, True, False, False]]  # both leave the sequence
    assert size2[0, 1] == 2.0  # token 2 took token 3's full mass, none of token 1's
    assert x2[0, 1, 0] == pytest.approx((3.0 + 5.0) / 2)


def test_saliency_scores_sharp_rows_high_and_ignores_non_candidates():
    H, M = 2, 5
    probs = torch.full((1, H, M, M + 1), 1.0 / (M + 1))  # uniform rows: flat
    probs[:, :, 1] = torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0, 0.0])  # token 1 attends one key: sharpest
    probs[:, :, 2] = torch.tensor([0.5, 0.5, 0.0, 0.0, 0.0, 0.0])
    patch = torch.tensor([[False, True, True, True, True]])
    w = sharpness_saliency(probs, patch)
    assert w[0, 0] == 0.0 and w[0, 1] == 1.0  # the class token is no candidate; the sharpest scores 1
    assert 0.0 < w[0, 2] < 1.0 and w[0, 3] == 0.0 and w[0, 4] == 0.0  # the uniform ones are background


def test_proportional_attention_makes_a_merged_duplicate_exact():
    """Two identical tokens merged into one of size 2 with log 2 added to its key logit: every query
    sees the same softmax, so the attention output is unchanged (why sizes are tracked)."""
    torch.manual_seed(0)
    attn = Attention(8, 2).eval()
    x = torch.randn(1, 4, 8)
    dup = torch.cat([x, x[:, 3:]], dim=1)  # (1, 5, 8): token 3 twice
    with torch.no_grad():
        full = attn(dup, key_bias=torch.zeros(1, 5), return_merge_parts=True)[0]
        merged = attn(x, key_bias=torch.tensor([[0.0, 0.0, 0.0, math.log(2.0)]]), return_merge_parts=True)[0]
    assert torch.allclose(full[:, :4], merged, atol=1e-6)


def test_no_merge_is_exactly_the_unmerged_path(micro):
    model = random_model(micro, seed=2)
    video = random_video(micro, 3, seed=1)
    with torch.no_grad():
        ref = model.forward_reference(video, 0.5, 0.9)
        plain = model.forward_compact(video, 0.5, 0.9)
        off = model.forward_compact(video, 0.5, 0.9, "none", MAX_MERGE_RATIO)
        zero = model.forward_compact(video, 0.5, 0.9, "tome", 0.0)
    assert torch.equal(plain.logits, off.logits) and torch.equal(plain.logits, zero.logits)
    assert torch.allclose(plain.logits, ref.logits, atol=1e-5) and torch.equal(plain.active_tokens, ref.active_tokens)


@pytest.mark.parametrize("mode", ["tome", "tldr"])
def test_merging_without_halting_follows_merge_count(micro, mode):
    model = random_model(micro, seed=2)
    video = random_video(micro, 2, seed=1)
    with torch.no_grad():
        out = model.forward_compact(video, 1.0, 4.0, mode, 0.3)
    expected = [37]
    for _ in range(micro.num_joint - 1):
        expected.append(expected[-1] - merge_count(expected[-1], 0.3))
    assert out.active_tokens.tolist() == [expected, expected]
    # a merged patch stops at the layer that merged it; the last layer's survivors stop there
    stops = out.patch_stop_layer.flatten(1)
    for layer in range(1, micro.num_joint):
        assert (stops == layer).sum(-1).tolist() == [expected[layer - 1] - expected[layer]] * 2
    assert (stops == micro.num_joint).sum(-1).tolist() == [expected[-1] - 1] * 2  # minus the class token


@pytest.mark.parametrize("mode", ["tome", "tldr"])
def test_the_compact_path_runs_each_mlp_on_the_tokens_the_merge_left(micro, mode):
    """flops.py counts a merging layer's MLP on n - r tokens; the reference path must run it so."""
    model = random_model(micro, seed=2)
    rows = []
    hooks = [blk.mlp.register_forward_hook(lambda _m, args, _out: rows.append(args[0].shape[1])) for blk in model.joint]
    with torch.no_grad():
        out = model.forward_compact(random_video(micro, 1, seed=1), 1.0, 4.0, mode, 0.3)
    for h in hooks:
        h.remove()
    entered = out.active_tokens[0].tolist()
    assert all(merge_count(n, 0.3) > 0 for n in entered)
    assert rows == [n - merge_count(n, 0.3) for n in entered]


def test_merging_with_halting_counts_tokens_that_merged_or_halted(micro):
    model = random_model(micro, seed=2)
    video = random_video(micro, 3, seed=1)
    with torch.no_grad():
        halting = model.forward_compact(video, 0.5, 0.9)
        both = model.forward_compact(video, 0.5, 0.9, "tome", 0.25)
    assert not torch.equal(both.active_tokens, halting.active_tokens)
    halted_too = False
    for b in range(3):
        counts = both.active_tokens[b].tolist()
        for n, nxt in zip(counts, counts[1:]):
            assert nxt <= n - merge_count(n, 0.25)  # halting only removes more
            halted_too |= 0 < nxt < n - merge_count(n, 0.25)
    assert halted_too and both.logits.isfinite().all()
