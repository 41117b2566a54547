#!/usr/bin/env bash
# Sets up .venv on first run, then starts the WebUI; extra flags go to app.py (see: ./webui.sh --help).
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup_env.sh requirements.txt
exec .venv/bin/python app.py "$@"
