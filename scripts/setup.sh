#!/usr/bin/env bash
# Idempotent set-up: Debian packages (FluidSynth; PortAudio for live input), a virtual environment in .venv, the Python
# packages of requirements.txt and this project (editable).  Re-running only installs what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""; [ "$(id -u)" != 0 ] && sudo="sudo"
  echo "setup: installing Debian packages: ${missing[*]}"
  # another install (an unattended upgrade) may hold dpkg's lock: wait for it, bounded, instead of failing
  local timeout=${SETUP_DPKG_LOCK_TIMEOUT:-600}
  python3 scripts/wait_for_dpkg_lock.py --timeout "$timeout"
  $sudo apt-get -o DPkg::Lock::Timeout="$timeout" update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout="$timeout" install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
}
if command -v apt-get >/dev/null; then
  apt_install libfluidsynth3 fluid-soundfont-gm libportaudio2 ${EXTRA_APT_PACKAGES:-}
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.requirements.sha
want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages into .venv (first run: a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements.txt
  .venv/bin/python -m pip install -q --no-deps -e .
  echo "$want" > "$stamp"
fi
