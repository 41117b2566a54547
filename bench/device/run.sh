#!/usr/bin/env bash
# The one device check: install what a bare GPU image lacks from .whl/, then bench/device/device_bench.py.
#   bash bench/device/run.sh OUT                     # on a lent GPU machine (<= 8 minutes)
#   bash bench/device/run.sh --device cpu --quick OUT  # rehearsal here (installs nothing)
# OUT receives device-report.md, device-figures.json, install.log and the test/bench logs.
set -uo pipefail
cd "$(dirname "$0")/../.."

device=cuda
quick=()
extra=()
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device="$2"; shift 2 ;;
    --quick) quick=(--quick); shift ;;
    --budget-s|--skip-tests|--skip-diffusers)
      if [ "$1" = "--budget-s" ]; then extra+=("$1" "$2"); shift 2; else extra+=("$1"); shift; fi ;;
    -h|--help) sed -n 2,5p "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) out="$1"; shift ;;
  esac
done
if [ -z "$out" ]; then
  echo "usage: bash bench/device/run.sh [--device cuda|cpu] [--quick] OUT" >&2
  exit 2
fi
mkdir -p "$out"
out="$(cd "$out" && pwd)"

# The worktree's venv where there is one (here); the image's python3 on a lent machine.
if [ -n "${PYTHON:-}" ]; then py="$PYTHON"
elif [ -x .venv/bin/python ]; then py=.venv/bin/python
else py=python3; fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 DISABLE_TELEMETRY=1 GRADIO_ANALYTICS_ENABLED=False
export PYTHONDONTWRITEBYTECODE=1

if [ "$device" != "cpu" ]; then
  # Import name → wheel file prefix, for every package the core layers, the tests and the bench need that a
  # bare image may lack (bench/device/wheels.txt pins them; fetch_wheels.sh downloads them).
  bash bench/device/install_wheels.sh "$py" "${WHEEL_DIR:-.whl}" >"$out/install.log" 2>&1
  status=$?
  cat "$out/install.log"
  if [ "$status" -ne 0 ]; then
    echo "installing the missing wheels failed (see $out/install.log); running what can run" >&2
  fi
fi

timeout 480 "$py" bench/device/device_bench.py --device "$device" "${quick[@]}" "${extra[@]}" "$out" \
  2>&1 | tee "$out/device-bench.log"
status=${PIPESTATUS[0]}
if [ "$status" -eq 124 ]; then
  echo "device_bench.py ran past 480 s and was stopped; the figures written so far are in $out" >&2
fi
exit "$status"
