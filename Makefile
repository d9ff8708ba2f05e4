# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -euo pipefail -c

PY_ENV = $(shell ./scripts/python-env.sh)
PY = $(PY_ENV)/bin/python
NODE_STAMP = node_modules/.install-stamp
export ONNXRUNTIME_NODE_INSTALL = skip   # the CUDA libraries come from NuGet, which is unreachable; CPU binaries ship in the npm package
export PYTHONPATH := $(CURDIR)/models

.PHONY: run test test-python test-ts test-oip bench-oip build deps python-env node-deps ffmpeg bench golden default-model clean

run: ffmpeg build  ## install what is needed and serve the embedded default model on :8080
	node dist/server.js

test: deps  ## install what is needed and run every test, TypeScript and Python
	$(MAKE) --no-print-directory test-python
	$(MAKE) --no-print-directory test-ts
	$(MAKE) --no-print-directory test-oip

test-python: python-env
	cd models && $(PY) -m pytest -q tests

test-ts: node-deps python-env
	npx tsc --noEmit -p tsconfig.test.json
	HALTINGVT_PYTHON=$(PY) npx vitest run

# Stock OIP clients (tritonclient HTTP and gRPC, grpcio-health-checking, grpcio-reflection) against the
# real server; they live in their own small cached venv (scripts/python-clients-env.sh, test/oip/requirements.txt).
test-oip: node-deps ffmpeg
	clients=$$(./scripts/python-clients-env.sh)
	"$$clients/bin/python" -m pytest -q -p no:cacheprovider test/oip

build: node-deps
	npx tsc -p tsconfig.json

deps: ffmpeg python-env node-deps

python-env:
	@./scripts/python-env.sh >/dev/null

node-deps: $(NODE_STAMP)
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

ffmpeg:  ## Debian's ffmpeg when apt works (root), else the static binary from the npm package
	@command -v ffmpeg >/dev/null || ./scripts/install-ffmpeg.sh

golden: python-env  ## regenerate the cases shared by the Python and TypeScript tests
	cd models && $(PY) -m haltingvt golden

bench: deps build
	node --import tsx bench/run.ts $(BENCH_ARGS)

bench-oip: deps build  ## batch vs one by one per route, gRPC vs HTTP, dynamic batching off/on (about 2 minutes)
	node --import tsx bench/oip.ts $(BENCH_ARGS)

clean:
	rm -rf dist node_modules
