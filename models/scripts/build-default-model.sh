#!/usr/bin/env bash
# Reproduces the embedded default model (models/default) from nothing: train on the generated
# benchmark (CPU, ~52 min on 2 cores), evaluate on the validation split (where every choice is made)
# and on the test split (only reported: haltingvt/splits.py), export to ONNX with both reports.
# Run from the repository root. SEED picks the training seed (the shipped model is the default one);
# models/scripts/seed-study.sh runs this recipe for several seeds without exporting.
set -euo pipefail
V=$(scripts/python-env.sh)
export PYTHONPATH=models
PY="$V/bin/python"
SEED=${SEED:-1}
RUN=${RUN:-runs/motion-tiny-seed$SEED}
OUT=${OUT:-models/default}
VERSION=${VERSION:-3.2.2}

# 1. train (task + ponder + Motion Loss), one command, ~52 min on 2 cores. The motion-tiny preset
#    starts from a space-time conv stem (kernels 8, 3, 3: each token sees 32x32 pixels around its
#    patch) and sine-cosine tables (config.py). Every patch kept until step 1800, then a keep ratio
#    drawn per step (so the keep knob works at serving time); halting and the ponder loss from step
#    2900; 4 static clips per batch for the Motion Loss. 4000 steps rather than 3300 because the
#    step at which a run leaves chance varies from ~400 to ~1300 (docs/decisions.md). The time
#    budget is a guard for slower machines: the run saves and stops there, late in the cosine.
#    Seed 1 was picked on the validation split among seeds 0 and 1 (89.6% and 95.8% there); the
#    seed study (seed-study.sh: seeds 0, 1, 2 on the test split) is in docs/model-card.md.
#    An interrupted run resumes from its last checkpoint; a finished one is not trained again.
RESUME=()
[ -f "$RUN/last.pt" ] && RESUME=(--resume "$RUN/last.pt")
[ -f "$RUN/final.pt" ] || "$PY" -m haltingvt train "${RESUME[@]}" --out "$RUN" --seed "$SEED" --steps 4000 --time-budget-min 58 --batch-size 16 --lr 1e-3 \
  --warmup-steps 100 --ponder 5e-4 --motion 1.0 --static-clips 4 --keep-choices 0.3,0.4,0.5,0.6,0.7 \
  --prune-start 1800 --halt-start 2900 --save-every 100 --workers 1 --threads 2

# 2. validation (seed 1001, 240 files) then test (seed 3001, 480 files), each rendered as MP4 (H.264)
#    and WebM (VP9) files on first use: default knobs, dense, static clips, motion head, keep x
#    threshold sweep, plot. Validation chooses; test is only reported.
for split in validation test; do
  "$PY" -m haltingvt eval --checkpoint "$RUN/final.pt" --split "$split" --sweep --quiet --out "$OUT/eval"
done
[ "${EXPORT:-1}" = 1 ] || exit 0

# 3. export: ONNX graph + manifest (sha256 of every file, eval reports included), parity-checked
"$PY" -m haltingvt export --checkpoint "$RUN/final.pt" --out "$OUT" --name motion-tiny --version "$VERSION"
