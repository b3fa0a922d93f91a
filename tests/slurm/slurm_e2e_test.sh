#!/usr/bin/env bash
# End to end on a real Slurm: starts a private single-node Slurm (slurm/local/up.sh), writes and
# submits the sbatch scripts of a tiny suite on 1, 2 and 4 ranks (`longseq slurm --submit`), waits
# for the jobs, merges their results (`longseq suite collect`), checks every run succeeded, and
# stops Slurm. Exits 77 (skipped) only where Slurm cannot be started here, saying why.
# Usage: slurm_e2e_test.sh LONGSEQ TINY_SUITE SLURM_LOCAL_DIR
set -uo pipefail
longseq=$1
suite=$2
local_slurm=$3
for program in munged slurmctld slurmd sbatch squeue scontrol srun; do
  command -v $program >/dev/null || { echo "SKIP: $program is not installed (Debian: slurm-wlm munge)"; exit 77; }
done
work=$(mktemp -d)
export LONGSEQ_SLURM_DIR=$work/slurm
# A port of its own, so that this test never meets another Slurm on the machine.
export LONGSEQ_SLURM_PORT=$((20000 + RANDOM % 20000))
export SLURM_CONF=$LONGSEQ_SLURM_DIR/etc/slurm.conf
cleanup() {
  "$local_slurm/down.sh" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
if ! "$local_slurm/up.sh" > "$work/up.txt" 2>&1; then
  cat "$work/up.txt"
  echo "SKIP: Slurm cannot start here (see above)"
  exit 77
fi

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

"$longseq" slurm "$suite" -o "$work/jobs" --submit > "$work/submit.txt" 2>&1 ||
  { cat "$work/submit.txt"; fail "longseq slurm --submit exited $?"; exit 1; }
cat "$work/submit.txt"
jobs=$(sed -n 's/^submitted .* as job \([0-9]*\)$/\1/p' "$work/submit.txt")
[ "$(echo "$jobs" | wc -w)" = 3 ] || fail "expected 3 jobs, got: $jobs"
grep -q -- "--signal=B:USR1@" "$work"/jobs/*np4.sbatch || fail "no preemption signal in the script"
grep -q -- "--requeue" "$work"/jobs/*np4.sbatch || fail "no requeue in the script"

for _ in $(seq 1 1200); do
  pending=$(squeue -h -j "$(echo $jobs | tr ' ' ',')" 2>/dev/null | wc -l)
  [ "$pending" = 0 ] && break
  sleep 0.5
done
[ "$pending" = 0 ] || fail "jobs still queued or running after 10 minutes"
for job in $jobs; do
  state=$(scontrol show job "$job" | grep -oP 'JobState=\K\S+')
  code=$(scontrol show job "$job" | grep -oP ' ExitCode=\K\S+')
  [ "$state" = COMPLETED ] && [ "$code" = 0:0 ] || {
    fail "job $job ended $state with $code"
    cat "$work"/jobs/*"$job"*.out 2>/dev/null | tail -n 20
  }
done

"$longseq" suite collect "$work/jobs" -o "$work/merged.h5" || fail "collect exited $?"
"$longseq" suite export "$work/merged.h5" -o "$work/merged.jsonl" >/dev/null || fail "export exited $?"
count=$(wc -l < "$work/merged.jsonl")
[ "$count" = 24 ] || fail "the merged file has $count records, expected 24"
grep -q '"status": "failed"' "$work/merged.jsonl" && fail "a run failed: $(grep -m1 failed "$work/merged.jsonl")"
for ranks in 1 2 4; do
  grep -q "\"ranks\": $ranks," "$work/merged.jsonl" || fail "no record of $ranks ranks"
done

[ $failures = 0 ] && echo "slurm_e2e_test: all passed"
exit $failures
