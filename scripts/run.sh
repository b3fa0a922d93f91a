#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main job: `longseq bench` over a small grid of
# sequence lengths for the materialised (softmax) and flash attention mixers. Extra arguments go
# to `longseq bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
preset=$(./scripts/preset.sh)
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$(nproc)" --target longseq
# Idle OpenMP threads sleep instead of spinning (see README: threads and shared machines).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
device=cpu
[ "$preset" = cuda ] && device=cuda
exec "build/$preset/suites/longseq" bench softmax,flash --seq 1024,2048,4096 --device "$device" "$@"
