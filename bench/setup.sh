#!/usr/bin/env bash
# Creates (once) the Python environment the ONNX export and check use:
# target/bench-venv with pinned onnx, numpy and onnxruntime from PyPI.
# Idempotent: when the venv already has exactly these pins it does nothing.
#   bench/setup.sh            # then: target/bench-venv/bin/python bench/onnx/export.py ...
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/target/bench-venv"
python="${PYTHON:-python3}"

# The Python onnxruntime is pinned to the same release as the
# onnxruntime-web the browser side uses, so the two run the same kernels'
# source (the browser's are compiled to wasm).
pins=(
  "onnx==1.23.2"
  "numpy==2.4.6"
  "onnxruntime==1.30.0"
)
stamp="$venv/.bench-pins"
want="$(printf '%s\n' "${pins[@]}")"

if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi

if [[ ! -x "$venv/bin/python" ]]; then
  echo "bench/setup.sh: creating $venv" >&2
  "$python" -m venv "$venv"
fi
echo "bench/setup.sh: installing ${pins[*]}" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${pins[@]}"
printf '%s\n' "$want" > "$stamp"
