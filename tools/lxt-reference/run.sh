#!/usr/bin/env bash
# Regenerates tests/fixtures/lxt with LXT 2.1 itself (reference.py) in a virtualenv of its own.
# LXT's explicit rules need only torch: its other dependencies are left out (--no-deps).
# Not run by CI (the fixtures are committed).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv="${VENV:-$here/.venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet torch==2.15.0 torchvision==0.29.2 transformers==5.24.0 safetensors numpy onnx onnxscript
"$venv/bin/pip" install --quiet --no-deps lxt==2.1
"$venv/bin/python" "$here/reference.py" "$@"
