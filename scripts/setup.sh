#!/usr/bin/env bash
# One-command setup: Debian packages, .venv with the pinned bpy wheel, torch and the project (editable).
# Idempotent: a rerun only checks what is already there.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

BPY_VERSION="${VDBFORGE_BPY_VERSION:-4.5.15}"
PYTHON="${PYTHON:-python3.11}"
APT_PACKAGES=(libnanovdb-dev libopenvdb-tools chromium zlib1g-dev libblosc-dev libopenvdb-dev libboost-dev)

need_apt=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$p")
done
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $PYTHON"
  "$PYTHON" -m venv .venv
fi
pip=(.venv/bin/python -m pip install -q --disable-pip-version-check)
stamp=".venv/.vdbforge-setup-$(sha1sum pyproject.toml scripts/setup.sh | sha1sum | cut -c1-12)-bpy$BPY_VERSION"
if [ ! -f "$stamp" ]; then
  "${pip[@]}" --upgrade pip
  "${pip[@]}" "bpy==$BPY_VERSION"
  "${pip[@]}" torch==2.14.1 torchvision==0.29.1
  "${pip[@]}" -e ".[dev,ml]"
  rm -f .venv/.vdbforge-setup-*
  touch "$stamp"
fi
echo "setup: ready — .venv/bin/vdbforge $(.venv/bin/python -c 'import bpy; print("(bpy", bpy.app.version_string + ")")' 2>/dev/null | tail -n1)"
