#!/usr/bin/env bash
# Prints the path of prometheus-adapter (the custom metrics API the HPA reads haltingvt_queue_depth
# through), building it first if needed from the Go module proxy. Cached per machine like kustomize;
# the build caches are temporary.
set -euo pipefail
version=v0.12.0
dir="${XDG_CACHE_HOME:-$HOME/.cache}/haltingvt/tools/prometheus-adapter-$version"
if [ ! -x "$dir/adapter" ]; then
  command -v go >/dev/null || { echo "prometheus-adapter is built with Go: install Go" >&2; exit 1; }
  echo "building prometheus-adapter $version into $dir (first run only, a few minutes)" >&2
  work=$(mktemp -d "${TMPDIR:-/tmp}/adapter-build.XXXXXX")
  trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
  export GOPATH="$work/gopath" GOCACHE="$work/gocache" GOTOOLCHAIN=local GOFLAGS=-mod=mod
  # `go install module@version` asks the proxy for the module's version list, which it refuses for
  # this module: download the exact version and build inside it.
  src=$(cd "$work" && go mod download -json "sigs.k8s.io/prometheus-adapter@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -d "$src" ] || { echo "prometheus-adapter $version could not be downloaded" >&2; exit 1; }
  mkdir -p "$dir"
  (cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$dir/adapter" ./cmd/adapter) >&2
fi
echo "$dir/adapter"
