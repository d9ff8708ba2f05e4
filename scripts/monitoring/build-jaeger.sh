#!/usr/bin/env bash
# Prints the path of Jaeger v2 (an OpenTelemetry Collector build with Jaeger's storage and query API),
# building it first if needed from the Go module proxy (scripts/go-tool.sh): the tracing test sends
# the service's spans to it over OTLP on loopback and reads them back through its query API.
set -euo pipefail
exec "$(dirname "$0")/../go-tool.sh" jaeger github.com/jaegertracing/jaeger v1.75.0 ./cmd/jaeger
