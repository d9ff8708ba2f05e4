# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -euo pipefail -c

PY_ENV = $(shell ./scripts/python-env.sh)
PY = $(PY_ENV)/bin/python
NODE_STAMP = node_modules/.install-stamp
export ONNXRUNTIME_NODE_INSTALL = skip   # the CUDA libraries come from NuGet, which is unreachable; CPU binaries ship in the npm package
export PYTHONPATH := $(CURDIR)/models

.PHONY: run test test-python test-ts build deps python-env python-test-deps node-deps ffmpeg bench golden default-model clean image image-test

run: ffmpeg build  ## install what is needed and serve the embedded default model on :8080
	node dist/server.js

test: deps  ## install what is needed and run every test, TypeScript and Python
	$(MAKE) --no-print-directory test-python
	$(MAKE) --no-print-directory test-ts

test-python: python-env
	cd models && $(PY) -m pytest -q tests

test-ts: node-deps python-test-deps
	npx tsc --noEmit -p tsconfig.test.json
	HALTINGVT_PYTHON=$(PY) KUSTOMIZE=$$(./scripts/k8s-tools.sh) npx vitest run

build: node-deps
	npx tsc -p tsconfig.json

deps: ffmpeg python-test-deps node-deps

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

golden: python-env  ## regenerate the cases shared by the Python and TypeScript tests
	cd models && $(PY) -m haltingvt golden

bench: deps build
	node --import tsx bench/run.ts $(BENCH_ARGS)

image:  ## build the container image (podman, else docker; local base images when no registry answers)
	./scripts/container/build.sh

image-test: ffmpeg  ## build the image and smoke-test the real container (read-only, non-root, SIGTERM)
	./scripts/container/image-test.sh

clean:
	rm -rf dist node_modules
