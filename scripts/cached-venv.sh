#!/usr/bin/env bash
# cached-venv.sh REQUIREMENTS NAME [DIR]: prints the path of a Python virtual environment holding
# REQUIREMENTS (a path under the repository root), creating it first if needed. Unless DIR is
# given, it lives outside the checkout, keyed by the file's hash
# (~/.cache/haltingvt/NAME-<hash>), so a fresh clone (and CI) on the same machine reuses it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
req="$root/$1"
key=$(sha256sum "$req" | cut -c1-12)
venv="${3:-${XDG_CACHE_HOME:-$HOME/.cache}/haltingvt/$2-$key}"
mkdir -p "$(dirname "$venv")"
# Two makes (or a make and a test) creating the same environment at once would delete each
# other's half-installed packages: the second waits for the first.
exec 9>"$venv.lock"
flock 9
if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
  echo "creating the Python environment $venv from $1 (first run only)" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
  touch "$venv/.complete"
fi
echo "$venv"
