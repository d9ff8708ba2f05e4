"""python -m haltingvt golden: writes the cases both languages test against (models/golden/*.json)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from .config import kept_patches, preset
from .flops import FlopsConstants, glimpser_only_tokens, merged_joint_macs, video_macs
from .merging import MERGE_MODES, merge_count, merge_macs
from .sampling import segment_centre_indices

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PARITY_KNOBS = [(0.5, 0.99, "none", 0.0), (0.3, 0.9, "none", 0.0), (1.0, 0.99, "none", 0.0), (0.5, 3.0, "none", 0.0),
                (0.5, 0.99, "tome", 0.3), (1.0, 3.0, "tome", 0.5), (0.5, 0.9, "tldr", 0.25), (1.0, 3.0, "tldr", 0.5)]

GOLDEN = Path(__file__).resolve().parent.parent / "golden"


def flops_cases() -> list[dict]:
    cases = []
    for name, keep, tokens in [
        ("paper-minik-g05-b20", 1.0, None), ("paper-minik-g05-b20", 0.3, None),
        ("paper-minik-g05-b20", 0.5, None), ("paper-minik-g05-b20", 0.7, None),
        ("paper-anet-g05-b20", 1.0, None), ("paper-minik-g03-b5", 0.3, [473, 300, 200, 120, 80, 40, 0, 0, 0, 0]),
        ("motion-tiny", 1.0, None), ("motion-tiny", 0.5, [201, 150, 90, 40, 0, 0]), ("test-micro", 0.5, [21, 15, 9, 0]),
    ]:
        k = FlopsConstants.of(preset(name))
        kept = kept_patches(keep, k.patches) if keep < 1.0 else k.patches
        active = tokens or glimpser_only_tokens(k, kept)
        cases.append({"preset": name, "constants": k.to_dict(), "keep": keep, "kept_per_frame": kept,
                      "active_tokens": active, "macs": video_macs(k, kept, active),
                      "gflops": round(video_macs(k, kept, active) / 1e9, 6)})
    return cases


def merging_cases() -> dict:
    """merge_count and merge_macs for a spread of live counts and ratios, and whole videos whose
    joint layers merge (the token counts a run without halting reports)."""
    counts = [{"live": n, "ratio": r, "merged": merge_count(n, r)}
              for n in (0, 1, 2, 3, 4, 21, 37, 201, 785) for r in (0.0, 0.05, 0.1, 0.25, 0.3, 0.45, 0.5)]
    costs = [{"live": n, "mode": mode, "ratio": r, "dim": d, "heads": h, "macs": merge_macs(n, mode, r, d, d // h)}
             for n in (0, 3, 21, 201, 785) for mode in MERGE_MODES for r in (0.1, 0.5) for d, h in ((128, 4), (384, 6))]
    videos = []
    for name, keep, mode, ratio, halted in [
        ("motion-tiny", 0.5, "tome", 0.25, None), ("motion-tiny", 0.5, "tldr", 0.25, None),
        ("motion-tiny", 1.0, "tome", 0.5, None), ("motion-tiny", 0.5, "tome", 0.1, [201, 150, 90, 40, 0, 0]),
        ("paper-minik-g05-b20", 0.5, "tome", 0.1, None), ("paper-minik-g05-b20", 0.5, "tldr", 0.3, None),
        ("test-micro", 0.5, "tldr", 0.5, [21, 9, 3, 0]), ("test-micro", 0.5, "none", 0.5, None),
    ]:
        k = FlopsConstants.of(preset(name))
        kept = kept_patches(keep, k.patches) if keep < 1.0 else k.patches
        active = halted or unhalted_merged_tokens(1 + k.frames * kept, k.joint_blocks, mode, ratio)
        macs = video_macs(k, kept, active, mode, ratio)
        videos.append({"preset": name, "constants": k.to_dict(), "keep": keep, "kept_per_frame": kept,
                       "merge_mode": mode, "merge_ratio": ratio, "active_tokens": active,
                       "joint_macs": [merged_joint_macs(k, n, mode, ratio) for n in active],
                       "macs": macs, "gflops": round(macs / 1e9, 6)})
    return {"counts": counts, "costs": costs, "videos": videos}


def unhalted_merged_tokens(first: int, layers: int, mode: str, ratio: float) -> list[int]:
    tokens = [first]
    while len(tokens) < layers:
        tokens.append(tokens[-1] - (merge_count(tokens[-1], ratio) if mode != "none" else 0))
    return tokens


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m haltingvt golden")
    ap.add_argument("--out", default=str(GOLDEN))
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    kept = [{"keep": k, "patches": p, "kept": kept_patches(k, p)}
            for p in (9, 49, 196) for k in (0.05, 0.1, 0.25, 0.3, 0.35, 0.5, 0.7, 0.9, 0.999, 1.0)]
    sampling = [{"n": n, "frames": t, "indices": segment_centre_indices(n, t)}
                for n in (1, 3, 7, 8, 9, 16, 60, 61, 250, 301, 3600) for t in (8, 10)]
    docs = {"flops.json": flops_cases(), "kept_patches.json": kept, "sampling.json": sampling}
    for name, cases in docs.items():
        (out / name).write_text(json.dumps({"cases": cases}, indent=1) + "\n")
        print(f"wrote {out / name}: {len(cases)} cases")
    (out / "merging.json").write_text(json.dumps(merging_cases(), indent=1) + "\n")
    print(f"wrote {out / 'merging.json'}")
    write_tiny_fixture(FIXTURES / "tiny", out / "parity_tiny")
    write_video_fixtures(out / "frames")
    return 0


def write_video_fixtures(out: Path) -> None:
    """Short clips with the frames Python's decoder samples from them (8 x 112 x 112 RGB, the default
    model's input): the TypeScript decoder must pick the same frames with pixels within tolerance."""
    import itertools

    from .synth.render import Renderer
    from .synth.scenes import make_spec
    from .synth.video_io import write_video
    from .video import count_frames, sample_video

    out.mkdir(parents=True, exist_ok=True)
    cases = []
    for name, (seed, index, width, height, frames) in {"landscape.mp4": (1999, 0, 320, 240, 45),
                                                        "portrait.webm": (1999, 1, 180, 320, 31)}.items():
        spec = make_spec(seed, index)
        renderer = Renderer(spec, (height, width))
        clip = (renderer.frame(k / spec.fps) for k in range(frames))
        write_video(out / name, itertools.islice(clip, frames), width, height, spec.fps)
        sampled = sample_video(out / name, 8, 112, 128)  # (8, 112, 112, 3)
        (out / f"{name}.rgb").write_bytes(sampled.tobytes())
        cases.append({"video": name, "frames_file": f"{name}.rgb", "decoded_frames": count_frames(out / name),
                      "shape": list(sampled.shape), "frames": 8, "size": 112, "resize_short_side": 128,
                      "label": spec.label_name})
    (out / "expected.json").write_text(json.dumps({"cases": cases}, indent=1) + "\n")
    print(f"wrote {out}: {len(cases)} video fixtures")

def write_tiny_fixture(model_dir: Path, parity_dir: Path) -> None:
    """A tiny exported model whose tokens halt at different layers, and cases for cross-language
    parity: an input tensor (float32 little-endian, NCTHW) with the reference path's outputs."""
    from .export import export_model
    from .export.variants import PRECISIONS, add_variant
    from .testing import random_model, random_video, sharpen_attention

    cfg = preset("test-micro", labels=("left", "right", "up", "down", "still"))
    model = sharpen_attention(random_model(cfg, seed=0))  # vid-TLDR's saliency needs rows that are not uniform
    export_model(model, model_dir, "tiny", "0.0.1")
    # Variants for the service's MODEL_PRECISION tests; random weights give near-zero logits, so
    # int8's relative logit error is large here and the bounds are not enforced.
    for precision in PRECISIONS:
        add_variant(model_dir, precision, enforce=False)
    video = random_video(cfg, batch=3, seed=7)  # (3, 3, T, S, S)
    parity_dir.mkdir(parents=True, exist_ok=True)
    (parity_dir / "input.f32").write_bytes(video.numpy().astype("<f4").tobytes())
    cases = []
    for keep, threshold, mode, ratio in PARITY_KNOBS:
        with torch.no_grad():  # the dense reference where it applies; merging exists on the compact path only
            ref = model.forward_reference(video, keep, threshold) if mode == "none" else \
                model.forward_compact(video, keep, threshold, mode, ratio)
        cases.append({"keep_ratio": keep, "halt_threshold": threshold, "merge_mode": mode, "merge_ratio": ratio,
                      "logits": ref.logits.numpy().round(7).tolist(),
                      "active_tokens": ref.active_tokens.tolist(), "patch_stop_layer": ref.patch_stop_layer.tolist()})
    doc = {"model": str(model_dir.relative_to(model_dir.parents[2])), "input": "input.f32",
           "input_shape": list(video.shape), "cases": cases}
    (parity_dir / "expected.json").write_text(json.dumps(doc) + "\n")
    print(f"wrote {model_dir} and {parity_dir}: {len(cases)} parity cases")
