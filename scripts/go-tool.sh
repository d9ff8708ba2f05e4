#!/usr/bin/env bash
# Prints the path of a Go program built from the Go module proxy, building it first if needed:
#   go-tool.sh NAME MODULE VERSION PACKAGE
# (e.g. go-tool.sh jaeger github.com/jaegertracing/jaeger v1.75.0 ./cmd/jaeger). Cached per machine in
# ~/.cache/haltingvt/tools/NAME-VERSION; the build caches are temporary. `go install module@version`
# asks the proxy for the module's version list, which it refuses for some modules: the exact version
# is downloaded and built inside it instead.
set -euo pipefail
name=$1 module=$2 version=$3 package=$4
dir="${XDG_CACHE_HOME:-$HOME/.cache}/haltingvt/tools/$name-$version"
if [ ! -x "$dir/$name" ]; then
  command -v go >/dev/null || { echo "$name is built with Go: install Go" >&2; exit 1; }
  echo "building $name $version into $dir (first run only, a few minutes)" >&2
  work=$(mktemp -d "${TMPDIR:-/tmp}/$name-build.XXXXXX")
  trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
  export GOPATH="$work/gopath" GOCACHE="$work/gocache" GOTOOLCHAIN=local GOFLAGS=-mod=mod
  src=$(cd "$work" && go mod download -json "$module@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -d "$src" ] || { echo "$module $version could not be downloaded" >&2; exit 1; }
  mkdir -p "$dir"
  (cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$dir/$name.partial" "$package") >&2
  mv "$dir/$name.partial" "$dir/$name"
fi
echo "$dir/$name"
