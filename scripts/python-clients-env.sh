#!/usr/bin/env bash
# Prints the path of the small virtual environment holding the independent OIP clients that
# test/oip drives (tritonclient, grpcio-health-checking, grpcio-reflection), creating it first if
# needed. It lives beside the model venv, keyed by the hash of test/oip/requirements.txt, so it is
# installed once per machine. Separate on purpose: tritonclient pins protobuf < 7, which would
# downgrade the model venv's protobuf under torch and onnx.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
req="$root/test/oip/requirements.txt"
key=$(sha256sum "$req" | cut -c1-12)
venv="${HALTINGVT_CLIENTS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/haltingvt/clients-$key}"
if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
  echo "creating the OIP client environment in $venv (first run only)" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
  touch "$venv/.complete"
fi
echo "$venv"
