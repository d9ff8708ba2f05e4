#!/bin/sh
# Removes from a production node_modules what cannot run in this image:
# onnxruntime-node's binaries for other systems and CPUs (~245 MB of its ~290 MB), source maps and
# type declarations; and lets the service user (not the owner, root) read and run what the owner can:
# some packages ship binaries as rwxr--r-- (e.g. @ffprobe-installer's). Usage: prune-modules NODE_MODULES_DIR
set -eu
modules=$1
arch=$(node -p process.arch)
ort="$modules/onnxruntime-node/bin/napi-v6"
if [ -d "$ort/linux/$arch" ]; then
  keep=$(mktemp -d)
  mv "$ort/linux/$arch" "$keep/"
  rm -rf "$ort"/*
  mkdir -p "$ort/linux"
  mv "$keep/$arch" "$ort/linux/"
  rmdir "$keep"
fi
find "$modules" -type f \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.cts' -o -name '*.d.mts' \) -delete
chmod -R a+rX "$modules"
find "$modules" -type f -perm -u+x -exec chmod a+x {} +
