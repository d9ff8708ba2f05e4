# syntax=docker/dockerfile:1.7
#
# The haltingvt HTTP service with ffmpeg and the embedded model inside.
#
#   docker build -t haltingvt .                          # CPU image (default)
#   docker build -t haltingvt:cuda --build-arg VARIANT=cuda .
#   docker run --rm -p 8080:8080 haltingvt               # GPU: add --gpus all to the cuda image
#
# The CUDA variant runs on nvidia/cuda (CUDA 12 + cuDNN 9 runtime, what onnxruntime-node's CUDA
# execution provider is built against) and downloads that provider's libraries from NuGet while
# building, so that build needs network access. The model served is models/default when it was
# exported into the build context, else the tiny test fixture (see src/config.ts).

ARG NODE_VERSION=22
ARG VARIANT=cpu
ARG CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04

# ---------------------------------------------------------------- build: compile, keep prod deps
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
# The CUDA libraries are fetched on purpose in the `deps-cuda` stage, not by every npm ci.
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p tsconfig.json \
 && npm prune --omit=dev --omit=optional --no-audit --no-fund
# --omit=optional drops the static ffmpeg npm packages: the image uses the distribution's ffmpeg.

# ---------------------------------------------------------------- deps: node_modules per variant
FROM build AS deps-cpu

FROM build AS deps-cuda
# Downloads libonnxruntime_providers_{cuda,shared,tensorrt}.so next to the binding (needs network).
RUN cd node_modules/onnxruntime-node \
 && ONNXRUNTIME_NODE_INSTALL=true node script/install.js \
 && test -f bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so \
 && test -f bin/napi-v6/linux/x64/libonnxruntime_providers_shared.so

FROM deps-${VARIANT} AS deps

# ---------------------------------------------------------------- runtime bases
FROM node:${NODE_VERSION}-bookworm-slim AS base-cpu
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg tini \
 && rm -rf /var/lib/apt/lists/*
ENV EXECUTION_PROVIDERS=cpu

FROM node:${NODE_VERSION}-bookworm-slim AS node-binary

FROM ${CUDA_IMAGE} AS base-cuda
# Node itself is one static-enough binary (glibc only); ffmpeg and tini from Ubuntu.
COPY --from=node-binary /usr/local/bin/node /usr/local/bin/node
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg tini \
 && rm -rf /var/lib/apt/lists/*
ENV EXECUTION_PROVIDERS=cuda,cpu \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

# ---------------------------------------------------------------- runtime
FROM base-${VARIANT} AS runtime
RUN groupadd --system --gid 10001 haltingvt \
 && useradd --system --uid 10001 --gid haltingvt --home-dir /app --shell /usr/sbin/nologin haltingvt
WORKDIR /app
COPY --from=deps --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
COPY --chown=root:root package.json openapi.yaml ./
# The gRPC server loads its .proto at run time (proto-loader, no code generation).
COPY --chown=root:root proto ./proto
# .dockerignore lets through only models/default (when exported) and the tiny fixture.
COPY --chown=root:root models ./models

ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    UPLOAD_DIR=/tmp \
    LOG_LEVEL=info
# Code and model are root-owned and read-only for the service user; it writes only to /tmp.
USER haltingvt
EXPOSE 8080 8081
# Docker and Compose use this; Kubernetes ignores it and uses its probes (/readyz, /healthz).
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# tini is PID 1 so SIGTERM reaches node, which drains and exits within SHUTDOWN_GRACE_MS.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/server.js"]
