#!/usr/bin/env bash
# Installs Debian's ffmpeg when we can (root with apt); otherwise the service falls back to the
# static binary shipped inside the @ffmpeg-installer npm package (see src/engine/ffmpeg-path.ts).
set -uo pipefail
if command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null && exit 0
fi
echo "no system ffmpeg: using the static binary from node_modules (@ffmpeg-installer)" >&2
