#!/usr/bin/env bash
# The GPU check (docs/gpu.md): our serving runtime (onnxruntime-node, the engine's session code) on
# the WebGPU provider beside the CPU, and the same weights through the toolkit's PyTorch paths on
# CUDA. One command on the device machine, from the repository root, with the bundle carried:
#
#   make gpu-bundle          # here: out/gpu-bundle.tar.xz
#   run(command="scripts/gpu-check.sh", carry=["out/gpu-bundle.tar.xz"], timeout_s=600)
#
# GPU mode (default): unpacks the bundle, installs the Vulkan loader when the machine has none, exports
# the DeiT-S-sized preset from its seed, then per model (default, preset): Node on webgpu (parity vs
# CPU and golden answers, node placement, dense vs halting at batch 1 and 8), PyTorch on cuda (parity
# vs Node, reference and compact paths timed). Writes gpu-results.md and the raw JSON to $OUT when the
# device tool runs it, else to bench/.
#
# --cpu: the same steps with the CPU standing in for both GPUs, on the default model only, one
# repetition at batch 1, against the golden answers and the PyTorch reference (what `make test` runs,
# test/gpu/gpu-check.test.ts). --bundle DIR|FILE: a staged folder or a tarball; --out DIR: where
# the report goes. Exit status 1 when any parity check fails (the report is written anyway).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
MODE=gpu
BUNDLE="$ROOT/out/gpu-bundle.tar.xz"
DEST=${OUT:-$ROOT/bench}
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) MODE=cpu; shift ;;
    --bundle) BUNDLE=$(realpath "$2"); shift 2 ;;
    --out) DEST=$(realpath -m "$2"); shift 2 ;;
    *) echo "usage: $0 [--cpu] [--bundle DIR|FILE] [--out DIR]" >&2; exit 2 ;;
  esac
done
log() { echo "[gpu-check $(date -u +%H:%M:%S)] $*" >&2; }
fail=0

WORK=$(mktemp -d /tmp/haltingvt-gpu-check.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
if [ -d "$BUNDLE" ]; then
  B="$BUNDLE"
else
  [ -f "$BUNDLE" ] || { log "no bundle at $BUNDLE (make gpu-bundle)"; exit 2; }
  B="$WORK/bundle"
  mkdir -p "$B"
  # xz-utils, else Python's lzma (an image may lack the xz command).
  unxz() { if command -v xz >/dev/null; then xz -dc "$1"; else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"; fi; }
  unxz "$BUNDLE" | tar -C "$B" -xf - || { log "cannot unpack $BUNDLE"; exit 2; }
fi
mkdir -p "$DEST"

if [ "$MODE" = gpu ]; then
  # GPU_CHECK_* stand in for a rehearsal of GPU mode on a machine without one (docs/gpu.md).
  PROVIDER=${GPU_CHECK_PROVIDER:-webgpu} DEVICE=${GPU_CHECK_DEVICE:-cuda} BATCHES=${GPU_CHECK_BATCHES:-1,8}
  REPS=${GPU_CHECK_REPS:-10} WARMUP=${GPU_CHECK_WARMUP:-2} TOL=1e-3
  NODE="$B/bin/node"
  PY=${GPU_CHECK_PYTHON:-python3}  # the machine's own, with PyTorch
  # The device machine has NVIDIA's Vulkan driver but no loader: unpack the carried one (device README).
  if ! ldconfig -p | grep -q 'libvulkan.so.1 '; then
    for f in "$B"/debs/*.deb; do dpkg -x "$f" /; done
    ldconfig
  fi
  icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  [ -f "$icd" ] && export VK_DRIVER_FILES="$icd" VK_ICD_FILENAMES="$icd"
else
  PROVIDER=cpu DEVICE=cpu BATCHES=1 REPS=1 WARMUP=0 TOL=1e-4
  NODE=$([ -x "$B/bin/node" ] && echo "$B/bin/node" || command -v node)
  PY="${HALTINGVT_PYTHON:-$("$ROOT/scripts/python-env.sh")/bin/python}"
fi
export PYTHONPATH="$ROOT/models${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

# Machine facts, as JSON for the report.
{
  echo "{\"mode\": \"$MODE\", \"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\","
  echo " \"bundle\": $(tr -d '\n' <"$B/BUNDLE.json"),"
  if command -v nvidia-smi >/dev/null; then
    echo " \"GPU\": \"$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -1)\","
  fi
  echo " \"Vulkan loader\": \"$(ldconfig -p | grep -o 'libvulkan.so.1 ' | head -1 || echo none)${VK_DRIVER_FILES:+, ICD $VK_DRIVER_FILES}\","
  echo " \"kernel\": \"$(uname -sr)\"}"
} >"$WORK/facts.json"

MODELS=("default:$ROOT/models/default:$B/inputs/default:$B/golden/default_answers.json")
if [ "$MODE" = gpu ]; then
  log "exporting the DeiT-S-sized preset from its seed (bench/gpu/prepare.py preset)"
  if timeout 300 "$PY" bench/gpu/prepare.py preset --out "$WORK/preset" >"$WORK/preset.json" &&
     timeout 120 "$PY" bench/gpu/prepare.py inputs --model "$WORK/preset" --out "$WORK/inputs-preset" --seed 1002 --count "${GPU_CHECK_PRESET_CLIPS:-8}" >/dev/null; then
    MODELS+=("preset:$WORK/preset:$WORK/inputs-preset:")
  else
    log "the preset could not be made; going on with the default model"
    fail=1
  fi
fi

nodes=() torches=()
for entry in "${MODELS[@]}"; do
  IFS=: read -r name dir inputs golden <<<"$entry"
  log "$name: Node on $PROVIDER"
  timeout 300 "$NODE" "$B/check.mjs" --model "$dir" --inputs "$inputs" --provider "$PROVIDER" ${golden:+--golden "$golden"} \
    --batches "$BATCHES" --reps "$REPS" --warmup "$WARMUP" --logit-tolerance "$TOL" --work "$WORK" --out "$WORK/node-$name.json" || fail=1
  [ -f "$WORK/node-$name.json" ] || { log "$name: the Node half wrote nothing"; fail=1; continue; }
  nodes+=(--node "$WORK/node-$name.json")
  log "$name: PyTorch on $DEVICE"
  timeout 300 "$PY" bench/gpu/torch_side.py --model "$dir" --inputs "$inputs" --node-json "$WORK/node-$name.json" --device "$DEVICE" \
    --batches "$BATCHES" --reps "$REPS" --warmup "$WARMUP" --logit-tolerance "$TOL" >"$WORK/torch-$name.json" || fail=1
  [ -s "$WORK/torch-$name.json" ] && torches+=(--torch "$WORK/torch-$name.json")
done

"$PY" bench/gpu/report.py --facts "$WORK/facts.json" "${nodes[@]}" "${torches[@]}" --out "$DEST/gpu-results.md" || fail=1
# The raw figures travel back beside the report (the device tool returns up to 8 files from $OUT).
[ "$MODE" = gpu ] && cp "$WORK"/node-*.json "$WORK"/torch-*.json "$DEST/" 2>/dev/null
cat "$DEST/gpu-results.md"
log "done: $([ $fail = 0 ] && echo 'every check passed' || echo 'a check FAILED')"
exit $fail
