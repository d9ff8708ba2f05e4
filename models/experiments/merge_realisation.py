"""How much of token merging's FLOPs cut ONNX Runtime turns into time (realisation = time ratio / FLOPs
ratio, as `make bench` reports for halting), on the embedded model and on the DeiT-S preset with
random weights (accuracy is meaningless there, cost is not).

    PYTHONPATH=models python models/experiments/merge_realisation.py [--threads 2] [--reps 7]

Halting is switched off (threshold = joint layers) so that token counts, and so FLOPs, depend on the
knobs alone; each baseline/merged pair is timed interleaved, batch 1, median over reps.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from haltingvt import preset
from haltingvt.config import HaltingVTConfig, kept_patches
from haltingvt.export import feeds
from haltingvt.export.graph import build_graph
from haltingvt.flops import FlopsConstants, video_macs
from haltingvt.testing import random_model, random_video

ROOT = Path(__file__).resolve().parents[2]
MERGES = [("tome", 0.1), ("tome", 0.2), ("tldr", 0.1), ("tldr", 0.2)]


def session(model_bytes: bytes, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    return ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])


def measure(name: str, cfg: HaltingVTConfig, sess: ort.InferenceSession, video: np.ndarray, keep: float, reps: int) -> list[dict]:
    k = FlopsConstants.of(cfg)
    kept = kept_patches(keep, k.patches) if keep < 1.0 else k.patches
    off = float(cfg.num_joint)
    rows = []
    for mode, ratio in MERGES:
        runs = {"none": [], mode: []}
        tokens = {}
        for _ in range(reps):
            for m, r in (("none", 0.0), (mode, ratio)):
                started = time.perf_counter()
                _, active, _ = sess.run(None, feeds(video, keep, off, m, r))
                runs[m].append(time.perf_counter() - started)
                tokens[m] = active[0].tolist()
        base_t, merged_t = statistics.median(runs["none"]), statistics.median(runs[mode])
        base_f = video_macs(k, kept, tokens["none"])
        merged_f = video_macs(k, kept, tokens[mode], mode, ratio)
        speedup, cut = base_t / merged_t, base_f / merged_f
        rows.append({"model": name, "keep": keep, "mode": mode, "ratio": ratio, "base_ms": 1e3 * base_t,
                     "merged_ms": 1e3 * merged_t, "time_ratio": speedup, "flops_ratio": cut,
                     "realisation": speedup / cut, "tokens": tokens[mode]})
        print(f"{name} keep {keep} {mode} {ratio}: {1e3 * base_t:.1f} -> {1e3 * merged_t:.1f} ms = {speedup:.3f}x time "
              f"for {cut:.3f}x fewer FLOPs: realisation {speedup / cut:.2f}", flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--out", help="write the rows as JSON here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    default = ROOT / "models" / "default"
    manifest = json.loads((default / "manifest.json").read_text())
    cfg = HaltingVTConfig.from_dict(manifest["config"])
    sess = session((default / "model.onnx").read_bytes(), args.threads)
    video = random_video(cfg, 1, seed=0).numpy()
    rows += measure(f"{manifest['name']} {manifest['version']}", cfg, sess, video, manifest["knobs"]["keep_ratio"]["default"], args.reps)
    cfg = preset("paper-minik-g05-b20")
    sess = session(build_graph(random_model(cfg, seed=0)).SerializeToString(), args.threads)
    rows += measure("paper-minik-g05-b20 (random weights)", cfg, sess, random_video(cfg, 1, seed=0).numpy(), 0.5, max(3, args.reps // 2))
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
