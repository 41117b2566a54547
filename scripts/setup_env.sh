#!/usr/bin/env bash
# Creates .venv and installs the given requirements file when it changed since the last install.
# Usage: bash scripts/setup_env.sh requirements.txt
set -euo pipefail
req="${1:-requirements.txt}"
py="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "Creating .venv with $($py --version)"
  "$py" -m venv .venv
fi
stamp=".venv/.installed-$(basename "$req")"
want="$(cat requirements*.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "Installing $req into .venv (first run takes a few minutes)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r "$req"
  # spandrel declares torchvision, which cannot sit beside our CPU torch: its own deps come from requirements.txt.
  if [ -f requirements-nodeps.txt ]; then .venv/bin/python -m pip install --quiet --no-deps -r requirements-nodeps.txt; fi
  echo "$want" > "$stamp"
fi
# The app itself, editable, so `import webui` works from any folder (bench/, scripts/, subprocesses) without
# sys.path edits. --no-deps: the pinned requirements above are the dependencies; --no-build-isolation: build with
# the venv's own setuptools instead of fetching one.
if ! .venv/bin/python -c "import importlib.metadata as m; m.distribution('sd-webui')" 2>/dev/null; then
  .venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
fi
