#!/usr/bin/env bash
# Installs every Debian 12 package NodeNomad needs to build, test and run,
# and nothing that is already there. Safe to run again and again.
set -euo pipefail

packages=(
  build-essential cmake ninja-build git python3 pkg-config ccache
  libboost1.81-all-dev libboost-json1.81-dev
  libfmt-dev catch2 libxxhash-dev libssl-dev libzstd-dev
  clang libclang-rt-14-dev
)

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages are installed"
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
echo "setup: installing ${missing[*]}"
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
