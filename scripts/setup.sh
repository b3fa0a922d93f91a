#!/usr/bin/env bash
# Installs the Debian packages longseq builds and runs with, skipping the install when all are present.
# Idempotent, quiet, works as root without a terminal (CI) and through sudo otherwise.
set -euo pipefail

packages=(
  cmake g++ make pkg-config git
  libopenmpi-dev openmpi-bin libhdf5-openmpi-dev libyaml-cpp-dev
  libopenblas-dev libkissfft-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libfmt-dev libspdlog-dev libcli11-dev
  slurm-wlm munge
  python3-numpy python3-h5py python3-matplotlib
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  sudo_cmd=(sudo)
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q </dev/null >/dev/null
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null >/dev/null
echo "setup: done"
