#!/usr/bin/env bash
# Regenerates tests/fixtures/hf with LXT 2.1's efficient mode (generate.py) in a virtualenv of its own.
# LXT 2.1's efficient mode needs transformers 4.x (4.52.4 here) and torchvision (its model map
# imports its ViT patch); LXT's other dependencies are
# left out (--no-deps). Not run by CI (the fixtures are committed).
#   run.sh                  all families (llama mistral qwen2 qwen3)
#   run.sh qwen2 qwen3      only these
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv="${VENV:-$here/.venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet torch==2.15.0 torchvision transformers==4.52.4 safetensors numpy
"$venv/bin/pip" install --quiet --no-deps lxt==2.1
"$venv/bin/python" "$here/generate.py" "$@"
