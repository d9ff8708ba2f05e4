"""The PyTorch half of the GPU check (scripts/gpu-check.sh): the weights of the model's ONNX file
(read back by haltingvt.export.read_back.model_from_onnx, so both sides run exactly the same numbers)
through the toolkit's two paths on `--device` (cuda on the GPU machine, cpu standing in here):

  reference  forward_reference, the authors' dense masked loop: every token computed at every layer
  compact    forward_compact, the halting realisation: halted tokens removed, the loop stops early

It checks the reference path against what the Node half (bench/gpu/check.ts) computed on the same
clips (logits, active-token counts, per-patch stop maps), then times both paths at dense and halting
knobs per batch size. Prints one JSON line; exit 1 when parity fails.

Run with PYTHONPATH=models.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from haltingvt.export.read_back import model_from_onnx


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench/gpu/torch_side.py")
    ap.add_argument("--model", required=True)
    ap.add_argument("--inputs", required=True)
    ap.add_argument("--node-json", required=True, help="what bench/gpu/check.ts wrote for this model")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--logit-tolerance", type=float, default=1e-3)
    a = ap.parse_args(argv)

    device = torch.device(a.device)
    # fp32 on both sides: TF32 would trade the parity this check is about for speed.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    model, manifest = model_from_onnx(Path(a.model))
    model = model.to(device)
    index = json.loads((Path(a.inputs) / "index.json").read_text())
    clips = [torch.from_numpy(np.fromfile(Path(a.inputs) / f, dtype="<f4").reshape(index["dims"][1:])) for f in index["files"]]
    node = json.loads(Path(a.node_json).read_text())
    knobs = manifest["knobs"]
    layers = manifest["flops"]["joint_blocks"]
    settings = {"dense": (1.0, float(layers)), "halting": (knobs["keep_ratio"]["default"], knobs["halt_threshold"]["default"])}

    def batch(n: int) -> torch.Tensor:
        return torch.stack([clips[i % len(clips)] for i in range(n)]).to(device)

    # Parity: the reference path against the Node side's outputs on the same clips and knobs.
    parity = []
    ok = True
    for name, (keep, thr) in settings.items():
        want = node["outputs"][name]
        n = len(want["logits"])
        out = model.forward_reference(batch(n), keep, thr)
        logits = out.logits.cpu().numpy()
        ref = np.array(want["logits"], np.float32)
        rel = float(np.abs(logits - ref).max() / max(np.abs(ref).max(), 1e-12))
        token_rows = int((out.active_tokens.cpu().numpy() != np.array(want["active_tokens"])).any(axis=1).sum())
        stops = int((out.patch_stop_layer.reshape(n, -1).cpu().numpy() != np.array(want["patch_stop_layer"])).sum())
        good = rel <= a.logit_tolerance and token_rows == 0 and stops == 0
        ok = ok and good
        parity.append({"against": f"node {node['session_provider']} ({name})", "logits_rel": rel, "token_rows_differing": token_rows,
                       "stop_patches_differing": stops, "ok": good})

    timings = []
    for n in (int(b) for b in a.batches.split(",")):
        video = batch(n)
        for name, (keep, thr) in settings.items():
            for path in ("reference", "compact"):
                fn = model.forward_reference if path == "reference" else model.forward_compact
                for _ in range(a.warmup):
                    fn(video, keep, thr)
                sync(device)
                ms = []
                for _ in range(a.reps):
                    t = time.perf_counter()
                    fn(video, keep, thr)
                    sync(device)
                    ms.append((time.perf_counter() - t) * 1e3)
                med = float(np.median(ms))
                timings.append({"batch": n, "setting": name, "path": path, "reps": a.reps, "ms_per_run": med, "ms_per_clip": med / n})

    facts = {"torch": torch.__version__, "device": str(device), "threads": torch.get_num_threads()}
    if device.type == "cuda":
        facts["gpu"] = torch.cuda.get_device_name(device)
        facts["cuda"] = torch.version.cuda
    print(json.dumps({"model": manifest["name"], "facts": facts, "parity": parity, "timings": timings, "ok": ok}), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
