# Sourced by the other container scripts: picks the container engine and makes it usable.
#   CONTAINER_ENGINE  podman (default when installed) or docker
#   IMAGE             the tag to build and test (default haltingvt:latest)
# On a Debian machine without an engine, as root, installs podman (and runc) from Debian's packages.
# shellcheck shell=bash

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
IMAGE=${IMAGE:-localhost/haltingvt:latest}

if [ -z "${CONTAINER_ENGINE:-}" ]; then
  if command -v podman >/dev/null; then CONTAINER_ENGINE=podman
  elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then CONTAINER_ENGINE=docker
  elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "no container engine: installing podman from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends podman runc uidmap >/dev/null
    CONTAINER_ENGINE=podman
  else
    echo "no container engine found: install podman or docker" >&2
    exit 1
  fi
fi

if [ "$CONTAINER_ENGINE" = podman ]; then
  # Our sandbox's limits (no CAP_SYS_RESOURCE, hybrid cgroups, no systemd) need runc + cgroupfs;
  # the settings are harmless elsewhere, and a CONTAINERS_CONF of the user's own wins.
  export CONTAINERS_CONF=${CONTAINERS_CONF:-$REPO_ROOT/deploy/container/containers.conf}
  if ! command -v runc >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runc >/dev/null
  fi
fi

engine() { "$CONTAINER_ENGINE" "$@"; }
image_exists() { engine image inspect "$1" >/dev/null 2>&1; }

# The value of a global ARG in the Dockerfile, unless the environment overrides it.
dockerfile_arg() {
  local name=$1
  if [ -n "${!name:-}" ]; then echo "${!name}"; return; fi
  sed -n "s/^ARG $name=//p" "$REPO_ROOT/Dockerfile" | head -1
}
