#!/usr/bin/env bash
# Prints the path of kustomize, building it first if needed (from the Go module proxy, with the
# machine's Go; no binary download). Cached outside the checkout, so clones and CI runs share it.
set -euo pipefail
version=v5.8.2   # v5.8.3 needs Go 1.27
dir="${XDG_CACHE_HOME:-$HOME/.cache}/haltingvt/tools/kustomize-$version"
if [ ! -x "$dir/kustomize" ]; then
  command -v go >/dev/null || { echo "kustomize $version is needed: install Go (or kustomize itself, then KUSTOMIZE=path)" >&2; exit 1; }
  echo "building kustomize $version into $dir (first run only)" >&2
  mkdir -p "$dir"
  GOBIN="$dir" GOTOOLCHAIN=local go install "sigs.k8s.io/kustomize/kustomize/v5@$version" >&2
fi
echo "$dir/kustomize"
