"""Recipe experiment (docs/decisions.md, "Training from scratch"): the default model's recipe
(models/scripts/build-default-model.sh) with variations of the conv3d stem and of the step count,
each trained then scored on rendered held-out clips (seed 1001) at the default knobs and dense.
Meant for a GPU session, where several lanes of jobs run side by side; runs anywhere. Not part of
the package.

    PYTHONPATH=models python models/experiments/recipe_sweep.py OUT_DIR LANE_SPEC [LANE_SPEC ...]

LANE_SPEC = jobs separated by '+'; a job is name:kernels:steps:minutes[:seed], e.g.
    base:4,2,2:3300:3+wide:4,3,3:3300:3     (one lane, two jobs one after the other)
The curriculum (pruning from 45% of the steps, halting from 73%) scales with the steps, as in
the recipe (3300 steps: 1500 and 2400).
"""

import json
import os
import multiprocessing as mp
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from haltingvt import config as config_module
from haltingvt.checkpoint import load_checkpoint
from haltingvt.evaluate import Runner, load_clips, run
from haltingvt.train import TrainConfig, train

HELDOUT_SEED, HELDOUT_COUNT = 1001, int(os.environ.get("SWEEP_COUNT", 240))


def job_config(out: Path, name: str, steps: int, minutes: float, seed: int) -> TrainConfig:
    return TrainConfig(
        out=str(out / name), steps=steps, batch_size=16, lr=1e-3, warmup_steps=100, ponder=5e-4, motion=1.0,
        static_clips=4, keep_choices=(0.3, 0.4, 0.5, 0.6, 0.7), prune_start=round(steps * 1500 / 3300),
        halt_start=round(steps * 2400 / 3300), save_every=10 ** 9, workers=int(os.environ.get("SWEEP_WORKERS", 4)),
        threads=1, device="auto", time_budget_min=minutes, seed=seed)


def score(path: Path) -> dict:
    model = Runner.of(load_checkpoint(str(path))[0])
    clips, labels = load_clips(model.cfg, "synth", HELDOUT_COUNT, HELDOUT_SEED, progress=False)
    default = run(model, clips, labels, model.cfg.glimpser_keep[-1], 1.0 - model.cfg.halt_eps)
    dense = run(model, clips, labels, 1.0, float(model.cfg.num_joint), static=False)
    return {"default": asdict(default), "dense": asdict(dense), "ratio": default.gflops / dense.gflops}


def lane(out: Path, spec: str) -> None:
    torch.set_num_threads(1)
    for job in spec.split("+"):
        name, kernels, steps, minutes, *seed = job.split(":")
        kernels = tuple(int(k) for k in kernels.split(","))
        config_module.PRESETS["motion-tiny"] = config_module.PRESETS["motion-tiny"].replace(stem_kernels=kernels)
        t0 = time.time()
        result = train(job_config(out, name, int(steps), float(minutes), int(seed[0]) if seed else 0), progress=False)
        torch.set_num_threads(4)
        scores = score(out / name / "final.pt")
        torch.set_num_threads(1)
        line = {"job": name, "kernels": kernels, "seed": int(seed[0]) if seed else 0, "steps_planned": int(steps), "steps": result["steps"],
                "train_s": round(result["seconds"]), "wall_s": round(time.time() - t0), **scores}
        with open(out / "results.jsonl", "a") as f:
            f.write(json.dumps(line) + "\n")
        print(f"{name}: step {result['steps']} top-1 default {scores['default']['top1']:.3f} "
              f"dense {scores['dense']['top1']:.3f} ratio {scores['ratio']:.2f} ({line['wall_s']} s)", flush=True)


def main(out: str, specs: list[str]) -> None:
    Path(out).mkdir(parents=True, exist_ok=True)
    procs = [mp.get_context("spawn").Process(target=lane, args=(Path(out), spec)) for spec in specs]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    sys.exit(max(p.exitcode or 0 for p in procs))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
