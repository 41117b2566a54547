#!/usr/bin/env bash
# Same set-up as webui.sh plus test dependencies, then ruff, mypy and the whole test suite (--fast: the unit layer).
# Extra args go to pytest.
set -uo pipefail
cd "$(dirname "$0")"
bash scripts/setup_env.sh requirements-dev.txt || exit 1
# The optional Ray Serve extra has its own requirements file and tests (tests/serve); the suite installs it too.
bash scripts/setup_env.sh requirements-serve.txt || exit 1

# The browser tests (tests/ui) drive Debian's chromium through Playwright (never `playwright install`).
# A CJK font makes the Simplified Chinese screenshots readable. Nothing to do when chromium is already there.
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" -eq 0 ]; then as_root=(); elif command -v sudo >/dev/null; then as_root=(sudo -n); else as_root=(); fi
  if [ "$(id -u)" -eq 0 ] || [ "${#as_root[@]}" -gt 0 ]; then
    echo "Installing chromium for the browser tests (apt-get)" >&2
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-zenhei >&2 ||
      echo "Could not install chromium: the browser tests will fail (WEBUI_SKIP_BROWSER_TESTS=1 skips them)" >&2
  else
    echo "chromium missing and no root/sudo: the browser tests will fail (WEBUI_SKIP_BROWSER_TESTS=1 skips them)" >&2
  fi
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False

# Lint and type checks first (config in pyproject.toml): any finding fails the run before a test starts.
.venv/bin/python -m ruff check . || { echo "ruff found problems: failing the run" >&2; exit 1; }
.venv/bin/python -m mypy || { echo "mypy found problems: failing the run" >&2; exit 1; }

# --fast: the unit layer only (no slow, browser or end-to-end tests), for the edit-test loop; default: everything.
if [ "${1:-}" = "--fast" ]; then
  shift
  set -- -m "not slow and not browser and not e2e" "$@"
fi
.venv/bin/python -m pytest "$@"
status=$?
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: failing the run" >&2
  exit 1
fi
exit "$status"
