# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -euo pipefail -c

PY_ENV = $(shell ./scripts/python-env.sh)
PY = $(PY_ENV)/bin/python
NODE_STAMP = node_modules/.install-stamp
CONNECT_GUARD = dist/native/connect-guard.so
export ONNXRUNTIME_NODE_INSTALL = skip   # the CUDA libraries come from NuGet, which is unreachable; CPU binaries ship in the npm package
# node-av's postinstall would fetch an ffmpeg CLI from GitHub (unreachable, and unused: the decoder
# library ships in @seydx/node-av-linux-x64). It compares the value exactly, so no trailing comment.
export SKIP_FFMPEG = true
export PYTHONPATH := $(CURDIR)/models

.PHONY: run test test-python test-ts test-oip bench-oip bench-streams bench-pulled bench-precision bench-tracing bench-main-floor fp16-model build deps python-env python-test-deps node-deps ffmpeg chromium promtool rtsp-server bench bench-deps golden default-model clean image image-test k8s-test k8s-deps gpu-bundle

run: build  ## install what is needed and serve the embedded default model on :8080 (no ffmpeg CLI: node-av decodes)
	node --max-semi-space-size=4 dist/server.js

test: deps  ## install what is needed and run every test, TypeScript and Python
	$(MAKE) --no-print-directory test-python
	$(MAKE) --no-print-directory test-ts
	$(MAKE) --no-print-directory test-oip

test-python: python-env
	cd models && $(PY) -m pytest -q tests

# kustomize and Jaeger (the tracing test's collector, built from the Go module proxy on the first run:
# about 4 minutes on 2 cores) are found on lines of their own: a command substitution inside an
# environment prefix cannot stop the recipe, so a failed build would only leave the variable empty.
# HALTINGVT_ALL_SUITES=1: a suite missing its tool or environment fails rather than skips
# (test/helpers/needs.ts).
test-ts: node-deps python-test-deps
	npx tsc --noEmit -p tsconfig.test.json
	kustomize=$$(./scripts/k8s/kustomize.sh)
	jaeger=$$(./scripts/monitoring/build-jaeger.sh)
	HALTINGVT_ALL_SUITES=1 HALTINGVT_PYTHON=$(PY) KUSTOMIZE="$$kustomize" JAEGER="$$jaeger" npx vitest run

# Stock OIP clients (tritonclient HTTP and gRPC, grpcio-health-checking, grpcio-reflection) against the
# real server. Their own small cached venv (scripts/python-clients-env.sh, test/oip/requirements.txt),
# not python-test-deps: tritonclient needs protobuf < 7 and the model environment has 7.
test-oip: node-deps ffmpeg
	clients=$$(./scripts/python-clients-env.sh)
	"$$clients/bin/python" -m pytest -q -p no:cacheprovider test/oip

build: node-deps $(CONNECT_GUARD)
	npx tsc -p tsconfig.json

deps: ffmpeg chromium promtool rtsp-server python-test-deps node-deps $(CONNECT_GUARD)

# What pulled streams' decoders load (LD_PRELOAD) so that their sockets reach only the checked source.
$(CONNECT_GUARD): src/native/connect-guard.c
	mkdir -p $(@D)
	cc -O2 -shared -fPIC -Wall -Wextra -Werror -o $@ $< -ldl

python-env:
	@./scripts/python-env.sh >/dev/null

# Test-only Python packages, into the same cached environment; the stamp names this file's hash.
python-test-deps: python-env
	@stamp=$(PY_ENV)/.test-deps-$$(sha256sum test/requirements.txt | cut -c1-12)
	if [ ! -f $$stamp ]; then $(PY) -m pip install --quiet -r test/requirements.txt && touch $$stamp; fi

node-deps: $(NODE_STAMP)
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

ffmpeg:  ## Debian's ffmpeg when apt works (root), else the static binary from the npm package
	@command -v ffmpeg >/dev/null || ./scripts/install-ffmpeg.sh

chromium:  ## Debian's chromium for the browser test of /demo (test/browser), installed like ffmpeg when apt works (root)
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null
	fi

promtool:  ## promtool (Debian's prometheus package) for the `promtool check metrics` test of /metrics, installed like chromium
	@if ! command -v promtool >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null
	fi

rtsp-server:  ## Debian's GStreamer RTSP server (with python3-gi) for the pulled-stream tests' RTSP source, installed like chromium
	@if ! /usr/bin/python3 -c 'import gi; gi.require_version("GstRtspServer", "1.0")' 2>/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-gi gir1.2-gst-rtsp-server-1.0 gir1.2-gstreamer-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-bad >/dev/null
	fi

golden: python-env  ## regenerate the cases shared by the Python and TypeScript tests
	cd models && $(PY) -m haltingvt golden

bench: deps build bench-deps  ## every benchmark side by side (bench/results.md), then the protocol one (bench/results-oip.md) and live streams (bench/results-streams.md, bench/results-pulled.md)
	node --import tsx bench/run.ts $(BENCH_ARGS)
	if [[ "$(BENCH_ARGS)" != *--quick* ]]; then node --import tsx bench/oip.ts | tee bench/results-oip.md; fi
	node --import tsx bench/streams.ts $(if $(findstring --quick,$(BENCH_ARGS)),--quick,)
	node --import tsx bench/pulled.ts $(if $(findstring --quick,$(BENCH_ARGS)),--quick,)

bench-precision: node-deps python-env  ## only section 6 of make bench: fp32 vs int8 and batch 8 vs 1 on both models, test-split top-1 (results in bench/out/precision)
	node --import tsx bench/run.ts --skip halting,decode,service --results bench/out/precision $(BENCH_ARGS)

# The fp16 graph is for the CUDA execution provider; with it models/default would pass the 15 MB
# budget, so it is made on demand into a copy: MODEL_DIR=models/.cache/default-fp16 MODEL_PRECISION=fp16.
fp16-model: python-env  ## models/default plus its fp16 variant, in models/.cache/default-fp16 (parity-checked on CPU)
	rm -rf models/.cache/default-fp16 && mkdir -p models/.cache && cp -r models/default models/.cache/default-fp16
	$(PY) -m haltingvt quantize --model models/.cache/default-fp16 --precision fp16

bench-oip: deps build  ## batch vs one by one per route, gRPC vs HTTP, dynamic batching off/on (about 2 minutes)
	node --import tsx bench/oip.ts $(BENCH_ARGS)

bench-streams: deps build  ## live streams only: streams per 2 cores against the limit, window latency, RSS over 200 streams and a 10-minute stream (about 17 minutes; BENCH_ARGS=--quick: 5), then bench-pulled
	node --import tsx bench/streams.ts $(BENCH_ARGS)
	node --import tsx bench/pulled.ts $(BENCH_ARGS)

bench-pulled: deps build  ## pulled streams only: CPU-seconds and GFLOPs per hour of a quiet and a busy stream, RSS over 200 pulled streams added and removed (about 8 minutes; BENCH_ARGS=--quick: 3)
	node --import tsx bench/pulled.ts $(BENCH_ARGS)

bench-tracing: deps build  ## what tracing costs: CPU per video by process and videos/s, tracing off and on (spans to Jaeger on loopback), interleaved; BASE=DIR (a checkout with dist/ built) adds that build beside them (about 5 minutes)
	node --import tsx bench/ab.ts --jaeger $(if $(BASE),--base $(BASE),) --variant 'tracing off:' --variant 'tracing on:OTEL_EXPORTER_OTLP_ENDPOINT=$$JAEGER' $(BENCH_ARGS)

bench-main-floor: deps build  ## the main process's CPU per upload: a bare node:http server, the service with a canned engine (each back to back and with a video's gap) and the whole service, interleaved (about 6 minutes)
	node --import tsx bench/main-floor.ts $(BENCH_ARGS)

image:  ## build the container image (podman, else docker; local base images when no registry answers)
	./scripts/container/build.sh

image-test: ffmpeg  ## build the image and smoke-test the real container (read-only, non-root, SIGTERM)
	./scripts/container/image-test.sh

k8s-test: image node-deps ffmpeg k8s-deps  ## opt-in: the manifests on a real one-node k3s built here (about 12 minutes of builds the first time, then ~3 minutes; needs root; deploy/README.md)
	./scripts/k8s/k8s-test.sh

k8s-deps:  ## what k8s-test needs from Debian (runc, CNI plugins, iptables, Prometheus, a static libc), installed like chromium
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! { command -v runc && command -v prometheus && command -v jq && [ -x /usr/lib/cni/bridge ] && [ -f /usr/lib/x86_64-linux-gnu/libc.a ]; } >/dev/null; then
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq && apt-get install -y -qq --no-install-recommends runc containernetworking-plugins iptables conntrack prometheus jq gcc libc6-dev >/dev/null
	fi

bench-deps: python-env  ## PyAV and decord, the decode section's anchors (pip skips what is installed)
	$(PY) -m pip install -q -r bench/requirements-decode.txt

gpu-bundle: node-deps python-env  ## what the GPU check needs on the device machine, < 64 MiB (out/gpu-bundle.tar.xz; docs/gpu.md)
	./scripts/gpu-bundle.sh

clean:
	rm -rf dist node_modules
