#!/usr/bin/env bash
# Regenerates tests/fixtures/onnx/* (models.py) in a virtualenv of its own. Zennit 1.0.0
# declares Python >= 3.11.11; its code runs on 3.11.7, hence --ignore-requires-python.
# Not run by CI (the fixtures are committed). Arguments: family names (default: all).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv="${VENV:-$here/.venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet torch==2.15.0 torchvision==0.29.2 safetensors numpy onnx onnxscript onnxruntime
"$venv/bin/pip" install --quiet --no-deps --ignore-requires-python zennit==1.0.0
"$venv/bin/python" "$here/models.py" "$@"
