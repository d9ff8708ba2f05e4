#!/usr/bin/env bash
# The default model's recipe for several training seeds (SEEDS="0 1 2"), each evaluated on the
# validation and test splits, nothing exported; then one table of per-seed figures with the mean and
# spread (models/scripts/seed_table.py). ~52 min per seed on 2 CPU cores; a run already finished is
# not trained again (its final.pt is kept under runs/).
set -euo pipefail
for seed in ${SEEDS:-0 1 2}; do
  out=runs/seed-study/seed$seed
  if [ -f "runs/motion-tiny-seed$seed/final.pt" ] && [ -f "$out/test-results.json" ]; then continue; fi
  SEED=$seed OUT=$out EXPORT=0 models/scripts/build-default-model.sh
done
"$(scripts/python-env.sh)/bin/python" models/scripts/seed_table.py runs/seed-study
