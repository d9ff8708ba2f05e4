#!/usr/bin/env bash
# Prints the path of the small virtual environment holding the independent OIP clients that
# test/oip drives (tritonclient, grpcio-health-checking, grpcio-reflection), creating it first if
# needed (HALTINGVT_CLIENTS_VENV names another place). Separate from the model venv on purpose:
# tritonclient pins protobuf < 7, which would downgrade the model venv's protobuf under torch and onnx.
exec "$(dirname "$0")/cached-venv.sh" test/oip/requirements.txt clients "${HALTINGVT_CLIENTS_VENV:-}"
