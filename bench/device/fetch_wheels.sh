#!/usr/bin/env bash
# Download the wheels of bench/device/wheels.txt for CPython 3.12 on manylinux x86_64 into .whl/ (git-ignored),
# so bench/device/run.sh can install them on a GPU machine without network. Usage: fetch_wheels.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
dest="${1:-.whl}"
py="${PYTHON:-.venv/bin/python}"
mkdir -p "$dest"
requirements=()
while read -r module requirement; do
  case "$module" in ""|"#"*) continue ;; esac
  requirements+=("$requirement")
done <bench/device/wheels.txt
"$py" -m pip download --no-deps --python-version 3.12 --platform manylinux2014_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 --implementation cp --only-binary=:all: \
  --dest "$dest" "${requirements[@]}"
ls -l "$dest"
du -sh "$dest"
