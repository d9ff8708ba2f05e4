#!/usr/bin/env bash
# Prints the path of the project's Python virtual environment, creating it first if needed.
# The environment lives outside the checkout, keyed by the hash of models/requirements.txt, so a
# fresh clone (and CI) on the same machine reuses it instead of downloading torch again (~5 GB).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
req="$root/models/requirements.txt"
key=$(sha256sum "$req" | cut -c1-12)
venv="${HALTINGVT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/haltingvt/venv-$key}"
if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
  echo "creating Python environment in $venv (first run only: downloads torch)" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
  touch "$venv/.complete"
fi
echo "$venv"
