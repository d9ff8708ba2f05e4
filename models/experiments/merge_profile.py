"""Where token merging's time goes on the DeiT-S preset: ONNX Runtime's profiler, merging off and on,
each joint layer's kernel time against the time its FLOPs would take at the unmerged layer's rate,
and the merge's own kernels by op. It is the profile behind `make bench`'s 1m/1n (merging's
realisation) rows.

    PYTHONPATH=models python models/experiments/merge_profile.py [--threads 2] [--reps 3] [--out F]

Random weights (cost does not depend on them), one random clip, keep 0.5, halting off (threshold =
joint layers) so that token counts follow the merge alone. The profiler adds a fixed cost to every
node, so absolute figures run above `make bench`'s; what it gives is the split.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import tempfile
from pathlib import Path

import onnxruntime as ort

from haltingvt import preset
from haltingvt.export import feeds
from haltingvt.export.graph import build_graph
from haltingvt.flops import FlopsConstants, joint_macs
from haltingvt.merging import merge_count
from haltingvt.testing import random_model, random_video

SETTINGS = [("none", 0.0), ("tome", 0.2), ("tldr", 0.2)]
# Fused nodes lose their names (ONNX Runtime calls them "BiasGelu", "Transpose_token_3"), so a node
# belongs to the innermost If whose run contains it: joint layer i's (graph.py names it joint{i}_N)
# or its merge's (joint{i}/merge{i}_N, and the mode's merge{i}/metric{i}_N inside it).
IF_NAME = re.compile(r"(?:^|/)(joint|merge|metric)(\d+)_\d+_kernel_time$")


def profile(model: bytes, video, mode: str, ratio: float, threads: int, reps: int, layers: int, workdir: str) -> dict:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.enable_profiling = True
    opts.profile_file_prefix = os.path.join(workdir, mode)
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    run = feeds(video, 0.5, float(layers), mode, ratio)
    for _ in range(2):  # warm-up, left out below
        sess.run(None, run)
    tokens = [int(n) for n in sess.run(None, run)[1][0]]
    for _ in range(reps - 1):
        sess.run(None, run)
    events = json.loads(Path(sess.end_profiling()).read_text())
    runs = [e for e in events if e.get("cat") == "Session" and e["name"] == "model_run"][2:]
    start = runs[0]["ts"]
    nodes = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= start]
    windows = []  # (ts, end, "layer" | "merge", i) of every If run
    for e in nodes:
        if e["args"].get("op_name") == "If" and (m := IF_NAME.search(e["name"])):
            windows.append((e["ts"], e["ts"] + e["dur"], "layer" if m.group(1) == "joint" else "merge", int(m.group(2))))
    layer_ms: dict[int, float] = collections.defaultdict(float)
    merge_ms: dict[int, float] = collections.defaultdict(float)
    merge_ops: dict[str, float] = collections.Counter()
    other_ms = 0.0
    for e in nodes:
        op = e["args"].get("op_name")
        if op == "If":  # an If's time is its branch's nodes, which are counted themselves
            continue
        ms = e["dur"] / reps / 1000
        inside = [w for w in windows if w[0] <= e["ts"] and e["ts"] + e["dur"] <= w[1]]
        if not inside:
            other_ms += ms
            continue
        _, _, kind, i = min(inside, key=lambda w: w[1] - w[0])
        if kind == "merge":
            merge_ms[i] += ms
            merge_ops[op] += ms
        else:
            layer_ms[i] += ms
    wall = sum(r["dur"] for r in runs) / len(runs) / 1000
    return {"mode": mode, "ratio": ratio, "wall_ms": wall, "tokens": tokens, "other_ms": other_ms,
            "layer_ms": [layer_ms[i] for i in range(layers)], "merge_ms": [merge_ms[i] for i in range(layers)],
            "merge_ops": dict(merge_ops.most_common())}


def report(base: dict, merged: dict, k: FlopsConstants) -> dict:
    rate = sum(base["layer_ms"]) / sum(joint_macs(k, n) for n in base["tokens"])  # ms per MAC, unmerged
    tokens = merged["tokens"]
    rows, expected = [], 0.0
    for i, n in enumerate(tokens):
        kept = n - merge_count(n, merged["ratio"])  # what the merge left for the MLP (halting is off)
        ideal = joint_macs(k, n, kept) * rate
        expected += ideal
        rows.append({"layer": i, "tokens": n, "ms": merged["layer_ms"][i], "at_unmerged_rate_ms": ideal,
                     "merge_ms": merged["merge_ms"][i]})
    layers, merges = sum(merged["layer_ms"]), sum(merged["merge_ms"])
    print(f"\n{merged['mode']} {merged['ratio']}: wall {base['wall_ms']:.1f} -> {merged['wall_ms']:.1f} ms (profiled)")
    print(" layer tokens   ms  at-unmerged-rate  merge ms")
    for r in rows:
        print(f"  {r['layer']:4d} {r['tokens']:6d} {r['ms']:6.2f} {r['at_unmerged_rate_ms']:10.2f} {r['merge_ms']:12.2f}")
    print(f" joint layers {layers:.1f} ms against {expected:.1f} at the unmerged rate ({layers - expected:+.1f}); "
          f"the merges' own kernels {merges:.1f} ms; the rest of the graph {base['other_ms']:.1f} -> {merged['other_ms']:.1f}")
    print(" merge kernels by op: " + ", ".join(f"{op} {ms:.2f}" for op, ms in list(merged["merge_ops"].items())[:10]))
    return {"mode": merged["mode"], "ratio": merged["ratio"], "layers": rows, "layers_ms": layers,
            "at_unmerged_rate_ms": expected, "merges_ms": merges, "merge_ops": merged["merge_ops"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", help="write the rows as JSON here")
    args = ap.parse_args()
    cfg = preset("paper-minik-g05-b20")
    model = build_graph(random_model(cfg, seed=0)).SerializeToString()
    video = random_video(cfg, 1, seed=0).numpy()
    with tempfile.TemporaryDirectory() as workdir:
        runs = [profile(model, video, m, r, args.threads, args.reps, cfg.num_joint, workdir) for m, r in SETTINGS]
    out = [report(runs[0], merged, FlopsConstants.of(cfg)) for merged in runs[1:]]
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
