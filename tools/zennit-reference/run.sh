#!/usr/bin/env bash
# Regenerates tests/fixtures/zennit with Zennit itself: a virtualenv with torch and zennit from
# PyPI, then generate.py. Not run by CI (the fixtures are committed).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -x "$here/.venv/bin/python" ]; then
  python3 -m venv "$here/.venv"
fi
"$here/.venv/bin/pip" install --quiet -r "$here/requirements.txt"
"$here/.venv/bin/python" "$here/generate.py"
