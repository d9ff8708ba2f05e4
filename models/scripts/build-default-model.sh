#!/usr/bin/env bash
# Reproduces the embedded default model (models/default) from nothing: train on the generated
# benchmark (CPU, ~53 min on 2 cores), evaluate on a held-out split rendered as real video files,
# export to ONNX with the evaluation report. Run from the repository root.
set -euo pipefail
V=$(scripts/python-env.sh)
export PYTHONPATH=models
PY="$V/bin/python"
RUN=${RUN:-runs/motion-tiny}

# 1. train (task + ponder + Motion Loss), one command, ~53 min on 2 cores. The motion-tiny preset
#    starts from a space-time conv stem (kernels 8, 3, 3: each token sees 32x32 pixels around its
#    patch) and sine-cosine tables (config.py). Every patch kept until step 1800, then a keep ratio
#    drawn per step (so the keep knob works at serving time); halting and the ponder loss from step
#    2900; 4 static clips per batch for the Motion Loss. 4000 steps rather than 3300 because the
#    step at which a run leaves chance varies from ~400 to ~1300 (docs/decisions.md). The time
#    budget is a guard for slower machines: the run saves and stops there, late in the cosine.
#    Seed 1: runs spread by several points (seed 0 gave 89.6%, seed 1 95.8%: docs/decisions.md).
#    The Motion Loss ablation is this command with --stop-at 600, with and without --motion 0.
"$PY" -m haltingvt train --out "$RUN" --seed 1 --steps 4000 --time-budget-min 58 --batch-size 16 --lr 1e-3 \
  --warmup-steps 100 --ponder 5e-4 --motion 1.0 --static-clips 4 --keep-choices 0.3,0.4,0.5,0.6,0.7 \
  --prune-start 1800 --halt-start 2900 --save-every 100 --workers 1 --threads 2

# 2. a held-out split as MP4 (H.264) and WebM (VP9) files, seed 1001 (training uses seeds 0-999)
[ -f data/heldout/labels.csv ] || "$PY" -m haltingvt synth --out data/heldout --count 240 --seed 1001 --workers 2

# 3. evaluate: default knobs, dense, static clips, motion head, keep x threshold sweep, plot
"$PY" -m haltingvt eval --checkpoint "$RUN/final.pt" --data data/heldout --sweep --out models/default/eval

# 4. export: ONNX graph + manifest (sha256 of every file, eval report included), parity-checked
"$PY" -m haltingvt export --checkpoint "$RUN/final.pt" --out models/default --name motion-tiny --version 3.2.0
