#!/usr/bin/env bash
# Prints the path of prometheus-adapter (the custom metrics API the HPA reads haltingvt_queue_depth
# through), building it first if needed from the Go module proxy (scripts/go-tool.sh).
set -euo pipefail
exec "$(dirname "$0")/../go-tool.sh" prometheus-adapter sigs.k8s.io/prometheus-adapter v0.12.0 ./cmd/adapter
