#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main job: the quickstart suite
# (configs/suites/quickstart.yaml) into results/quickstart-DATE.h5, then its report beside it.
# Extra arguments go to `longseq suite run` (e.g. --ranks 1).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
preset=$(./scripts/preset.sh)
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$(nproc)" --target longseq
# Idle OpenMP threads sleep instead of spinning (see README: threads and shared machines).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
longseq="build/$preset/suites/longseq"
mkdir -p results
results="results/quickstart-$(date -u +%Y%m%d-%H%M%S).h5"
status=0
"$longseq" suite run configs/suites/quickstart.yaml -o "$results" "$@" || status=$?
# 1: some runs failed (the table says which); the report still covers the rest.
[ "$status" -le 1 ] || exit "$status"
report="${results%.h5}-report"
"$longseq" report "$results" --plots "$report" > "$report.txt"
echo "report: $report.txt (tables and fitted slopes); plots: $report/ (where Python can draw them)"
exit "$status"
