# The haltingvt service with its embedded default model.
#
#   docker build -t haltingvt .                                  # CPU image (or: podman build --format docker …)
#   docker run --rm -p 8080:8080 --read-only --tmpfs /tmp haltingvt
#
# CUDA image (needs nvidia/cuda and NuGet, neither reachable on our machines, so it is reviewed, not
# built, here; deploy/README.md):
#   docker build -t haltingvt:cuda --build-arg VARIANT=cuda \
#     --build-arg RUNTIME_BASE=docker.io/nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 .
#
# Both variants share every stage; they differ only in RUNTIME_BASE and in onnxruntime's CUDA
# libraries, fetched in the build stage when VARIANT=cuda. Bases are fully qualified (podman has no
# search registries by default) and overridable, so an air-gapped site points them at its mirror.
# No "# syntax=" line: it would make BuildKit fetch a frontend image, and nothing here needs one.
# No FROM stage-${ARG}: buildah 1.28 cannot resolve it, so the variant is an ARG inside the stages.

ARG NODE_IMAGE=docker.io/library/node:22.23.5-bookworm-slim
ARG RUNTIME_BASE=docker.io/library/debian:bookworm-slim

# ---------------------------------------------------------------- build: compile, keep what runs
FROM ${NODE_IMAGE} AS build
ARG VARIANT=cpu
WORKDIR /app
# onnxruntime-node's install script fetches CUDA libraries from NuGet: only the CUDA variant wants them.
# node-av's would fetch an ffmpeg CLI from GitHub: the service decodes with the library alone.
ENV ONNXRUNTIME_NODE_INSTALL=skip \
    SKIP_FFMPEG=true
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY scripts/container/prune-modules.sh /usr/local/bin/prune-modules
# The connect guard pulled streams' decoders load (src/native/connect-guard.c): a compiler for it alone.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && mkdir -p dist/native \
 && gcc -O2 -shared -fPIC -Wall -Wextra -Werror -o dist/native/connect-guard.so src/native/connect-guard.c -ldl \
 && rm -rf /var/lib/apt/lists/*
RUN npx tsc -p tsconfig.json --sourceMap false --declaration false \
 && npm prune --omit=dev --no-audit --no-fund \
 && prune-modules node_modules \
 && if [ "$VARIANT" = cuda ]; then \
      cd node_modules/onnxruntime-node \
      && ONNXRUNTIME_NODE_INSTALL=true node script/install.js \
      && test -f bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so; \
    fi

# ---------------------------------------------------------------- node: the runtime binary only
FROM ${NODE_IMAGE} AS node

# ---------------------------------------------------------------- runtime
FROM ${RUNTIME_BASE} AS runtime
# tini as PID 1 forwards SIGTERM to node and reaps the worker processes.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log
# Node is one binary that needs only glibc and libstdc++, both in every base we use.
COPY --from=node /usr/local/bin/node /usr/local/bin/node
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# The gRPC server loads its .proto at run time (proto-loader, no code generation).
COPY proto ./proto
COPY models/default ./models/default
# Code and model are root-owned and read-only for the service user; it writes only under /tmp,
# which may be a tmpfs: the image runs with a read-only root filesystem.
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    UPLOAD_DIR=/tmp
USER 10001:10001
EXPOSE 8080 8081
# Honoured by Docker, and by podman for images built with --format docker (`podman healthcheck run`
# or podman's systemd timers). Kubernetes ignores it and uses its own probes on the same routes.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--"]
# The V8 flags of src/node-flags.ts (smaller young generation: no mark-compact a second under load).
CMD ["node", "--max-semi-space-size=4", "dist/server.js"]
