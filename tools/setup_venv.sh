#!/usr/bin/env bash
# Create or refresh .venv with real rclpy (PyPI wheels), torch and the dev tools.
# Idempotent: a stamp holds the hash of every requirements input; when it matches,
# nothing is reinstalled.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-}
if [[ -z "$PYTHON" ]]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PYTHON=$candidate; break
    fi
  done
fi
if [[ -z "$PYTHON" ]]; then
  echo "setup_venv: CPython 3.11 is required (the ros-jazzy-* wheels are built for it)." >&2
  echo "            Install python3.11 or set PYTHON=/path/to/python3.11." >&2
  exit 1
fi

inputs=(requirements.txt requirements-ros.txt requirements-dev.txt constraints.txt setup.py setup.cfg)
hash=$(cat "${inputs[@]}" | sha256sum | cut -c1-16)
stamp="$VENV/.robot_policy_ros-installed-$hash"

if [[ -f "$stamp" ]]; then
  echo "setup_venv: $VENV is up to date ($hash), nothing to install."
  exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "setup_venv: creating $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi

echo "setup_venv: installing requirements into $VENV (first run downloads torch, a few minutes)"
"$VENV/bin/python" -m pip install --quiet --upgrade pip setuptools wheel 2> >(grep -v 'is ignored' >&2)
"$VENV/bin/python" -m pip install --quiet -c constraints.txt \
  -r requirements-ros.txt -r requirements.txt -r requirements-dev.txt \
  2> >(grep -v 'is ignored' >&2)
# The package itself, editable, so the nodes are commands on the venv's PATH.
"$VENV/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e . \
  2> >(grep -v 'is ignored' >&2)
"$VENV/bin/python" -c 'import rclpy, torch, torchvision, cv2, diffusers, rosbags, safetensors'

rm -f "$VENV"/.robot_policy_ros-installed-*
touch "$stamp"
echo "setup_venv: done ($hash)"
