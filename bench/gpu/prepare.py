"""Inputs of the GPU check (scripts/gpu-check.sh), made deterministically from seeds, never committed.

  inputs   the golden inputs: eval clips of the procedural benchmark (haltingvt.synth.stream
           make_eval_clip, the clips of models/golden/default_answers.json for seed 1950),
           normalised as the engine feeds them, one float32 file each plus index.json
  preset   the DeiT-S-sized preset with random weights, exported with haltingvt.export (graph +
           manifest + its ORT-vs-PyTorch parity check). 87 MB of float32 weights do not fit the
           64 MiB the device tool carries, so the check makes it there, from the same seed as
           `make bench` (random_model seed 0, make_it_halt strength 3, halt_center 7.5: the centre
           bench/run.ts tuned to 24.2 GFLOPs; docs/benchmarks.md)

Run with PYTHONPATH=models; prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch


def cmd_inputs(a: argparse.Namespace) -> dict:
    from haltingvt.synth.stream import make_eval_clip, to_tensor

    manifest = json.loads((Path(a.model) / "manifest.json").read_text())
    spec = manifest["input"]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    files, labels = [], []
    for i in range(a.count):
        clip, label = make_eval_clip(a.seed, i, spec["frames"], spec["size"], spec["resize_short_side"])
        name = f"{i:03d}.f32"
        to_tensor(clip).numpy().astype("<f4").tofile(out / name)  # (3, T, S, S), as the engine's preprocessing
        files.append(name)
        labels.append(int(label))
    index = {"dims": [1, 3, spec["frames"], spec["size"], spec["size"]], "files": files, "labels": labels,
             "source": f"haltingvt.synth.stream.make_eval_clip(seed={a.seed}, index 0..{a.count - 1})"}
    (out / "index.json").write_text(json.dumps(index) + "\n")
    return {"dir": str(out), "clips": a.count}


@torch.no_grad()
def cmd_preset(a: argparse.Namespace) -> dict:
    from haltingvt.config import preset
    from haltingvt.export import export_model
    from haltingvt.testing import random_model

    t0 = time.perf_counter()
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    cfg = preset(a.preset, halt_center=a.halt_center)
    model = random_model(cfg, seed=a.seed, strength=a.strength)
    shutil.rmtree(out, ignore_errors=True)
    for attempt in range(4):
        # The export's parity check runs random videos: a token whose cumulative score sits on the
        # threshold can flip on rounding, so the centre is nudged and the export retried (as bench does).
        model.cfg = cfg.replace(halt_center=a.halt_center + 0.01 * attempt)
        try:
            result = export_model(model, out, name=f"{a.preset}-random", version="0.0.0-gpu-check")
            return {"dir": str(out), "preset": a.preset, "halt_center": model.cfg.halt_center, "parity": result["parity"],
                    "bytes": result["manifest"]["files"]["model.onnx"]["bytes"], "seconds": time.perf_counter() - t0}
        except AssertionError as err:
            print(f"[prepare] export parity check failed ({err}); nudging halt_center", file=sys.stderr)
    raise SystemExit("the preset export failed its parity check 4 times")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench/gpu/prepare.py")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("inputs")
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=1950)
    p.add_argument("--count", type=int, default=8)
    p = sub.add_parser("preset")
    p.add_argument("--out", required=True)
    p.add_argument("--preset", default="paper-minik-g05-b20")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--strength", type=float, default=3.0)
    p.add_argument("--halt-center", type=float, default=7.5)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    a = ap.parse_args(argv)
    print(json.dumps({"inputs": cmd_inputs, "preset": cmd_preset}[a.cmd](a)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
