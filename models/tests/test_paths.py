"""The compact path (halted tokens removed) must reproduce the authors' dense masked loop."""

import itertools

import pytest
import torch

from haltingvt import HaltingVT, preset
from haltingvt.layers import Attention
from haltingvt.testing import random_model, random_video


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp(min=1e-12))


@torch.no_grad()
def test_null_key_with_log_count_equals_attending_to_zeroed_tokens():
    torch.manual_seed(0)
    attn, norm = Attention(16, 2), torch.nn.LayerNorm(16)
    torch.nn.init.normal_(norm.bias)
    live = torch.randn(1, 5, 16)
    zeros = torch.zeros(1, 3, 16)
    dense = attn(norm(torch.cat([live, zeros], 1)))[:, :5]  # (1, 5, 16)
    null_k, null_v = attn.null_kv(norm.bias)
    compact = attn(norm(live), null_k=null_k, null_v=null_v, null_bias=torch.log(torch.tensor([3.0])))
    assert rel_err(compact, dense) < 1e-5


@torch.no_grad()
@pytest.mark.parametrize("seed", range(6))
def test_compact_matches_reference_over_random_inputs_weights_keeps_and_batches(seed):
    cfg = preset("test-micro")
    model = random_model(cfg, seed=seed, strength=10.0 + 10 * seed)
    halted_layers = set()
    for batch, keep, thr in itertools.product((1, 2, 3), (0.3, 0.5, 1.0), (0.6, 0.9, 0.99)):
        video = random_video(cfg, batch, seed=100 * seed + batch)
        ref = model.forward_reference(video, keep, thr)
        cmp = model.forward_compact(video, keep, thr)
        assert rel_err(cmp.logits, ref.logits) < 1e-4, (batch, keep, thr)
        assert torch.equal(cmp.active_tokens, ref.active_tokens), (batch, keep, thr)
        assert torch.equal(cmp.patch_stop_layer, ref.patch_stop_layer), (batch, keep, thr)
        drops = ref.active_tokens[:, :-1] > ref.active_tokens[:, 1:]  # (B, L-1)
        halted_layers |= {i for i in range(drops.shape[1]) if drops[:, i].any()}
    assert halted_layers == set(range(cfg.num_joint - 1)), "weights must make tokens halt at every layer"


@torch.no_grad()
def test_videos_batched_together_give_their_unbatched_results():
    cfg = preset("test-micro")
    model = random_model(cfg, seed=3)
    video = random_video(cfg, 4, seed=5)
    together = model.forward_compact(video, 0.5, 0.99)
    assert len({tuple(t) for t in together.active_tokens.tolist()}) > 1, "videos should halt differently"
    for b in range(4):
        alone = model.forward_compact(video[b:b + 1], 0.5, 0.99)
        assert rel_err(together.logits[b:b + 1], alone.logits) < 1e-5
        assert torch.equal(together.active_tokens[b], alone.active_tokens[0])


@torch.no_grad()
def test_counts_stop_when_the_class_token_halts_and_patches_map_is_consistent():
    cfg = preset("test-micro")
    model = random_model(cfg, seed=1)
    out = model.forward_reference(random_video(cfg, 3, seed=2), 0.5, 0.99)
    kept = cfg.num_frames * 5  # ceil(0.5 * 9) per frame
    for tokens, stop in zip(out.active_tokens.tolist(), out.patch_stop_layer):
        assert tokens[0] == 1 + kept
        after = tokens[tokens.index(0):] if 0 in tokens else []
        assert all(n == 0 for n in after), "nothing runs after the class token halted"
        assert int((stop > 0).sum()) == kept, "every kept patch stops at some layer, dropped ones are 0"
        for layer in range(1, cfg.num_joint + 1):  # patches still running at layer l = tokens[l-1] - 1
            if tokens[layer - 1]:
                assert int((stop >= layer).sum()) == tokens[layer - 1] - 1


@torch.no_grad()
def test_quirk_switches_change_the_result():
    base = preset("test-micro")
    video = random_video(base, 2, seed=9)
    outs = {}
    for name, cfg in {"authors": base, "keep_cls": base.replace(quirk_drop_cls_residual=False),
                      "mask_halted": base.replace(quirk_attend_halted=False),
                      "cls_never_halts_early": base.replace(quirk_cls_halts=False)}.items():
        model = random_model(cfg, seed=4)
        ref, cmp = model.forward_reference(video), model.forward_compact(video)
        assert rel_err(cmp.logits, ref.logits) < 1e-4 and torch.equal(cmp.active_tokens, ref.active_tokens), name
        outs[name] = ref.logits
    assert rel_err(outs["keep_cls"], outs["authors"]) > 1e-3
    assert rel_err(outs["mask_halted"], outs["authors"]) > 1e-6
    assert rel_err(outs["cls_never_halts_early"], outs["authors"]) > 1e-6


@torch.no_grad()
def test_a_class_token_that_never_halts_early_runs_every_layer():
    cfg = preset("test-micro", quirk_cls_halts=False)
    out = random_model(cfg, seed=1).forward_compact(random_video(cfg, 3, seed=2), 0.5, 0.9)
    assert (out.active_tokens > 0).all(), "the class token alone keeps every layer running"


def test_reference_path_trains():
    cfg = preset("test-micro")
    model = HaltingVT(cfg).train()
    out = model.forward_reference(random_video(cfg, 2))
    (out.logits.sum() + out.rho.mean()).backward()
    assert model.blocks[0].temporal_attn.qkv.weight.grad is not None
    assert model.fc_cls.weight.grad.abs().sum() > 0
