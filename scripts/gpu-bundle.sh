#!/usr/bin/env bash
# `make gpu-bundle`: what the GPU check (scripts/gpu-check.sh) needs on the device machine that the
# working tree does not carry, in one xz tarball under the device tool's 64 MiB limit (asserted,
# together with the tracked tree that travels beside it):
#   bin/node                 this machine's Node (an official build: needs only glibc and libstdc++)
#   node_modules/            onnxruntime-node's JS and its Linux x64 binaries (libonnxruntime.so.1
#                            holds the CPU and WebGPU providers), onnxruntime-common
#   check.mjs                bench/gpu/check.ts and the engine code it imports, bundled by esbuild
#   inputs/default/          golden inputs (bench/gpu/prepare.py inputs: seed 1950, 8 clips) and
#   golden/                  their golden answers (models/golden/default_answers.json)
#   debs/                    the Vulkan loader (libvulkan1, from Debian with apt-get download): the
#                            device machine has NVIDIA's Vulkan driver but no loader
#   BUNDLE.json              versions, commit, sizes
# The embedded model is not copied: it travels in the tracked tree (models/default), which the device
# tool carries beside the bundle. The DeiT-S-sized preset (87 MB of float32 weights) cannot fit:
# gpu-check.sh exports it there from its seed (bench/gpu/prepare.py preset).
#
#   scripts/gpu-bundle.sh                       -> out/gpu-bundle.tar.xz
#   scripts/gpu-bundle.sh --stage DIR --no-runtime
#        stages into DIR without Node, the ORT binaries and the debs (the checkout's node_modules is
#        linked instead) and makes no tarball: the CPU half that `make test` runs (test/gpu).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
LIMIT=$((64 * 1024 * 1024))
STAGE="$ROOT/out/gpu-bundle"
RUNTIME=1
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) STAGE=$(realpath -m "$2"); TARBALL=""; shift 2 ;;
    --no-runtime) RUNTIME=0; shift ;;
    *) echo "usage: $0 [--stage DIR] [--no-runtime]" >&2; exit 2 ;;
  esac
done
TARBALL=${TARBALL-$ROOT/out/gpu-bundle.tar.xz}
PY="${HALTINGVT_PYTHON:-$("$ROOT/scripts/python-env.sh")/bin/python}"
ORT="$ROOT/node_modules/onnxruntime-node"
log() { echo "[gpu-bundle] $*" >&2; }

rm -rf "$STAGE"
mkdir -p "$STAGE"/{golden,inputs}
log "esbuild bench/gpu/check.ts -> check.mjs"
"$ROOT/node_modules/.bin/esbuild" bench/gpu/check.ts --bundle --platform=node --format=esm --target=node20 \
  --external:onnxruntime-node --log-level=warning --outfile="$STAGE/check.mjs"
cp models/golden/default_answers.json "$STAGE/golden/"
log "golden inputs (bench/gpu/prepare.py inputs)"
PYTHONPATH="$ROOT/models" "$PY" bench/gpu/prepare.py inputs --model models/default --out "$STAGE/inputs/default" --seed 1950 --count 8 >/dev/null

if [ "$RUNTIME" = 1 ]; then
  mkdir -p "$STAGE/bin" "$STAGE/node_modules/onnxruntime-node/bin/napi-v6/linux/x64" "$STAGE/node_modules/onnxruntime-common" "$STAGE/debs"
  cp "$(command -v node)" "$STAGE/bin/node"
  cp -r "$ORT/package.json" "$ORT/dist" "$STAGE/node_modules/onnxruntime-node/"
  cp "$ORT"/bin/napi-v6/linux/x64/{libonnxruntime.so.1,onnxruntime_binding.node} "$STAGE/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/"
  cp -r "$ROOT/node_modules/onnxruntime-common/package.json" "$ROOT/node_modules/onnxruntime-common/dist" "$STAGE/node_modules/onnxruntime-common/"
  # The loader only: NVIDIA's driver ships its own ICD (the device README). Cached between builds.
  DEBS="$ROOT/out/.debs"
  if ! ls "$DEBS"/libvulkan1_*_amd64.deb >/dev/null 2>&1; then
    log "apt-get download libvulkan1 (amd64)"
    mkdir -p "$DEBS" /tmp/haltingvt-apt-amd64/partial
    o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/haltingvt-apt-amd64)
    apt-get "${o[@]}" -qq update
    (cd "$DEBS" && apt-get "${o[@]}" -qq download libvulkan1)
  fi
  cp "$DEBS"/libvulkan1_*_amd64.deb "$STAGE/debs/"
else
  ln -s "$ROOT/node_modules" "$STAGE/node_modules"
fi

cat >"$STAGE/BUNDLE.json" <<EOF
{"commit": "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- 2>/dev/null || echo '+dirty')",
 "built": "$(date -u +%Y-%m-%dT%H:%M:%SZ)", "node": "$(node --version)",
 "onnxruntime_node": "$(node -p "require('$ORT/package.json').version")", "runtime": $RUNTIME,
 "debs": "$(ls "$STAGE/debs" 2>/dev/null | tr '\n' ' ')"}
EOF

[ -n "$TARBALL" ] || { log "staged $STAGE"; exit 0; }
log "xz $(du -sh "$STAGE" | cut -f1) -> $TARBALL"
tar -C "$STAGE" -cf - . | xz -T0 -6 >"$TARBALL.tmp"
mv "$TARBALL.tmp" "$TARBALL"
size=$(stat -c %s "$TARBALL")
tree=$(git ls-files -z | xargs -0 stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}')
log "$(basename "$TARBALL"): $((size / 1024)) KiB; with the tracked tree that travels beside it: $(((size + tree) / 1024)) KiB of $((LIMIT / 1024))"
if [ "$size" -ge "$LIMIT" ] || [ $((size + tree)) -ge "$LIMIT" ]; then
  log "over the device tool's 64 MiB limit"
  exit 1
fi
