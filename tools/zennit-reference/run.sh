#!/usr/bin/env bash
# Regenerates tests/fixtures/zennit with Zennit itself: a virtualenv with torch and zennit from
# PyPI, then generate.py. Not run by CI (the fixtures are committed).
#   run.sh              the MLP, the CNN and the colour maps (Zennit 0.5.1, requirements.txt)
#   run.sh vgg          the VGG-style model (Zennit 1.0.0, in graph.sh's virtualenv)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ "${1:-}" = "vgg" ]; then
  venv="$here/.venv-graph"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet torch==2.15.0 safetensors numpy
  # Zennit 1.0.0 declares Python >= 3.11.11; its code runs unchanged on 3.11.7.
  "$venv/bin/pip" install --quiet --no-deps --ignore-requires-python zennit==1.0.0
  exec "$venv/bin/python" "$here/generate.py" vgg
fi
if [ ! -x "$here/.venv/bin/python" ]; then
  python3 -m venv "$here/.venv"
fi
"$here/.venv/bin/pip" install --quiet -r "$here/requirements.txt"
"$here/.venv/bin/python" "$here/generate.py" palettes mlp cnn
