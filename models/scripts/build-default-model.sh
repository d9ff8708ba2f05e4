#!/usr/bin/env bash
# Reproduces the embedded default model (models/default) from nothing: train on the generated
# benchmark (CPU, ~50 min on 2 cores), evaluate on a held-out split rendered as real video files,
# export to ONNX with the evaluation report. Run from the repository root.
set -euo pipefail
V=$(scripts/python-env.sh)
export PYTHONPATH=models
PY="$V/bin/python"
RUN=${RUN:-runs/motion-tiny}

# 1. train (task + ponder + Motion Loss), exactly as the committed model was made: 300 steps of a
#    1100-step schedule (that run also gave the Motion Loss ablation), then resumed under a 900-step
#    schedule. Every patch kept until step 350, then a keep ratio drawn per step (so the keep knob
#    works at serving time); halting and the ponder loss from step 650 (600 after the resume).
#    ~50 min on 2 cores. The ablation is stage a with --motion 0.
"$PY" -m haltingvt train --out "$RUN-a" --steps 1100 --stop-at 300 --batch-size 16 --lr 1e-3 --warmup-steps 40 \
  --ponder 5e-4 --motion 1.0 --keep-choices 0.3,0.4,0.5,0.6,0.7 --prune-start 350 --halt-start 650 \
  --save-every 100 --workers 0 --threads 2
"$PY" -m haltingvt train --out "$RUN" --resume "$RUN-a/last.pt" --steps 900 --batch-size 16 --lr 1e-3 \
  --warmup-steps 40 --ponder 5e-4 --motion 1.0 --keep-choices 0.3,0.4,0.5,0.6,0.7 --prune-start 350 \
  --halt-start 600 --save-every 100 --workers 1 --threads 2
# From-scratch aids added since (docs/decisions.md, "Training from scratch"), not used for the
# committed model: --embed-init sincos, --static-clips 4, --clean-steps/--full-scene-step.

# 2. a held-out split as MP4 (H.264) and WebM (VP9) files, seed 1001 (training uses seeds 0-999)
[ -f data/heldout/labels.csv ] || "$PY" -m haltingvt synth --out data/heldout --count 240 --seed 1001 --workers 2

# 3. evaluate: default knobs, dense, static clips, motion head, keep x threshold sweep, plot
"$PY" -m haltingvt eval --checkpoint "$RUN/final.pt" --data data/heldout --sweep --out models/default/eval

# 4. export: ONNX graph + manifest (sha256 of every file, eval report included), parity-checked
"$PY" -m haltingvt export --checkpoint "$RUN/final.pt" --out models/default --name motion-tiny --version 1.0.0
