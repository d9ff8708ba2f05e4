#!/usr/bin/env bash
# `make image`: builds the service image as $IMAGE (default localhost/haltingvt:latest), after making
# sure its base images exist (scripts/container/base-images.sh). Build args come from the environment:
#   VARIANT=cuda RUNTIME_BASE=docker.io/nvidia/cuda:…  (the CUDA image; see deploy/README.md)
#   NODE_IMAGE=… RUNTIME_BASE=…                         (mirrored bases for air-gapped sites)
set -euo pipefail
source "$(dirname "$0")/engine.sh"
"$(dirname "$0")/base-images.sh"

args=()
for name in NODE_IMAGE RUNTIME_BASE VARIANT; do
  if [ -n "${!name:-}" ]; then args+=(--build-arg "$name=${!name}"); fi
done
# podman writes OCI images by default, and the OCI format has no HEALTHCHECK: keep Docker's format.
[ "$CONTAINER_ENGINE" = podman ] && args+=(--format docker)
started=$(date +%s)
engine build "${args[@]}" -t "$IMAGE" "$REPO_ROOT"
echo "built $IMAGE in $(( $(date +%s) - started )) s" >&2
