#!/usr/bin/env bash
# Same set-up as webui.sh plus test dependencies, then the whole test suite. Extra args go to pytest.
set -uo pipefail
cd "$(dirname "$0")"
bash scripts/setup_env.sh requirements-dev.txt || exit 1
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False
.venv/bin/python -m pytest "$@"
status=$?
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: failing the run" >&2
  exit 1
fi
exit "$status"
