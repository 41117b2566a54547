#!/usr/bin/env bash
# Install, from a local wheel folder and without the network, each package of bench/device/wheels.txt whose
# import fails. Usage: install_wheels.sh PYTHON WHEEL_DIR. INSTALL_DRY_RUN=1 resolves without installing.
set -uo pipefail
py="$1"
wheels="$2"
list="${WHEEL_LIST:-$(dirname "$0")/wheels.txt}"
missing=()
while read -r module requirement; do
  case "$module" in ""|"#"*) continue ;; esac
  if "$py" -c "import $module" >/dev/null 2>&1; then
    echo "present: $module"
  else
    echo "missing: $module -> $requirement"
    missing+=("$requirement")
  fi
done <"$list"
if [ "${#missing[@]}" -eq 0 ]; then
  echo "nothing to install"
  exit 0
fi
if [ ! -d "$wheels" ]; then
  echo "no wheel folder $wheels: run bench/device/fetch_wheels.sh where the network is reachable" >&2
  exit 1
fi
command=("$py" -m pip install --no-index --no-deps --disable-pip-version-check --find-links "$wheels" "${missing[@]}")
echo "running: ${command[*]}"
if [ -n "${INSTALL_DRY_RUN:-}" ]; then
  exec "${command[@]}" --dry-run  # resolves every wheel from the folder, installs nothing
fi
# A user site keeps the image's own packages untouched when its site-packages is read-only.
"${command[@]}" || "${command[@]}" --user || exit 1
# Installed without dependencies: say now (in install.log) if one of them still cannot be imported, e.g. because
# the image's huggingface_hub is older than diffusers wants.
status=0
while read -r module requirement; do
  case "$module" in ""|"#"*) continue ;; esac
  if ! error=$("$py" -c "import $module" 2>&1); then
    echo "still not importable: $module: $(echo "$error" | tail -1)" >&2
    status=1
  fi
done <"$list"
exit "$status"
