#!/usr/bin/env bash
# Prints the path of the project's Python virtual environment, creating it first if needed
# (HALTINGVT_VENV names another place). Keyed by the hash of models/requirements.txt, outside the
# checkout, so a fresh clone reuses it instead of downloading torch again (~5 GB).
exec "$(dirname "$0")/cached-venv.sh" models/requirements.txt venv "${HALTINGVT_VENV:-}"
