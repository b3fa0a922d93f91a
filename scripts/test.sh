#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (CTest; GPU tests skip with a
# message where there is no GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
preset=$(./scripts/preset.sh)
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$(nproc)"
ctest --preset "$preset" -j "$(nproc)"
