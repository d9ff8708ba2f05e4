#!/usr/bin/env bash
# Prints the folder holding a k3s built from the Go module proxy (server + containerd shim + the
# containerd template our sandbox needs), building it first if needed. The proxy serves k3s only as a
# pseudo-version; its embedded manifests are missing from the module zip and are copied in. The module
# cache and Go build cache (~5 GB) are temporary and deleted after; the result (~270 MB) is cached per
# machine, keyed by the pseudo-version. First build: ~17 minutes and 3.4 GB of memory at link on 2 cores.
set -euo pipefail
module=github.com/k3s-io/k3s
pseudo=v1.35.1-0.20260211145931-c5b158798933   # k3s v1.35.1+k3s1
kube=v1.35.1 containerd=v2.1.5-k3s1
dir="${XDG_CACHE_HOME:-$HOME/.cache}/haltingvt/tools/k3s-$pseudo"
if [ -x "$dir/bin/k3s" ] && [ -f "$dir/containerd-config-v3.toml.tmpl" ]; then echo "$dir"; exit 0; fi
command -v go >/dev/null || { echo "k3s is built with Go: install Go (1.24 or later)" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/k3s-build.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
export GOPATH="$work/gopath" GOCACHE="$work/gocache" GOFLAGS=-mod=mod GOTOOLCHAIN=local
echo "building k3s $pseudo into $dir (first run only, ~17 minutes)" >&2
(cd "$work" && go mod download -x "$module@$pseudo" 2>/dev/null)
cp -a "$GOPATH/pkg/mod/$module@$pseudo" "$work/src" && chmod -R u+w "$work/src"
cp -a "$work/src/manifests/." "$work/src/pkg/deploy/embed/"
cd "$work/src"
ld="-w -s -X $module/pkg/version.Version=${kube}+k3s-local -X $module/pkg/version.GitCommit=${pseudo##*-}"
ld+=" -X $module/pkg/version.UpstreamGolang=$(go env GOVERSION)"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ld+=" -X $pkg.gitVersion=${kube}-k3s1 -X $pkg.gitMajor=1 -X $pkg.gitMinor=35"
done
ld+=" -X github.com/containerd/containerd/v2/version.Version=$containerd"
CGO_CFLAGS="-DSQLITE_ENABLE_DBSTAT_VTAB=1 -DSQLITE_USE_ALLOCA=1" CGO_ENABLED=1 \
  go build -p 2 -buildvcs=false -ldflags "$ld" \
  -tags "ctrd netcgo osusergo providerless urfave_cli_no_docs sqlite_omit_load_extension" \
  -o "$work/bin/" ./cmd/server github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2
# k3s's own containerd v3 template, kept as source so the cluster script can fill in its folders.
sed -n '/^const ContainerdConfigTemplateV3 = `/,/^`/p' pkg/agent/templates/templates.go | sed '1d;$d' \
  > "$work/containerd-config-v3.toml.tmpl"
[ -s "$work/containerd-config-v3.toml.tmpl" ] || { echo "containerd template not found in k3s source" >&2; exit 1; }
mkdir -p "$dir.partial/bin"
mv "$work/bin/server" "$dir.partial/bin/k3s"
mv "$work/bin/containerd-shim-runc-v2" "$dir.partial/bin/"
mv "$work/containerd-config-v3.toml.tmpl" "$dir.partial/"
rm -rf "$dir" && mv "$dir.partial" "$dir"
echo "$dir"
