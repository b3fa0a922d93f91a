#!/usr/bin/env bash
# End-to-end checks of the `longseq` command: exit codes, one-line errors, JSON fields.
# Usage: cli_test.sh LONGSEQ_BINARY [MPIEXEC MPIEXEC_FLAGS...]
set -u
longseq=$1
shift
mpiexec=("$@")
failures=0

fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# expect_user_error "what" args...: exit code 2 and exactly one line on standard error.
expect_user_error() {
  local what=$1
  shift
  local stderr_file
  stderr_file=$(mktemp)
  "$longseq" "$@" >/dev/null 2>"$stderr_file"
  local code=$?
  local lines
  lines=$(wc -l <"$stderr_file")
  if [ "$code" -ne 2 ]; then
    fail "$what: exit code $code, expected 2 ($(cat "$stderr_file"))"
  elif [ "$lines" -ne 1 ]; then
    fail "$what: $lines lines on stderr, expected 1: $(cat "$stderr_file")"
  fi
  rm -f "$stderr_file"
}

expect_user_error "unknown subcommand" frobnicate
expect_user_error "unknown flag" bench flash --sequence 10
expect_user_error "non-numeric length" bench flash --seq abc
expect_user_error "unknown mixer" bench nosuchmixer --seq 64
expect_user_error "negative length" bench flash --seq -5
expect_user_error "bad dtype" bench flash --seq 64 --dtype fp8
expect_user_error "bad pass" bench flash --seq 64 --pass sideways
expect_user_error "bad layout" bench flash --seq 64 --layout diagonal
expect_user_error "heads not divisible" bench flash --seq 64 --heads 6 --kv-heads 4
expect_user_error "cpu bf16" bench flash --seq 64 --dtype bf16
if [ "$("$longseq" info --json | head -c1)" != "{" ]; then
  fail "info --json does not print a JSON object"
fi

json=$("$longseq" bench flash --seq 96 --heads 2 --head-dim 32 --causal --reps 2 --check --json)
code=$?
[ "$code" -eq 0 ] || fail "bench --json exit code $code"
for field in mixer seq batch heads head_dim causal ranks layout strategy dtype device pass median_s spread \
  gflops yardstick_gflops peak_mem_bytes bytes_sent overlap max_rel_err; do
  echo "$json" | grep -q "\"$field\":" || fail "bench --json lacks field $field"
done
[ "$(echo "$json" | wc -l)" -eq 2 ] || fail "bench --pass both should print a fwd and a bwd record: $json"
errors=$(echo "$json" | sed -n 's/.*"max_rel_err": \([0-9.e+-]*\).*/\1/p')
for error in $errors; do
  awk -v e="$error" 'BEGIN { exit !(e <= 1e-5) }' || fail "max_rel_err $error above 1e-5"
done

# Distributed: two ranks, zig-zag layout, an odd length, checked against one rank.
if [ ${#mpiexec[@]} -gt 0 ]; then
  json=$("${mpiexec[@]}" -np 2 "$longseq" --threads 1 bench flash --seq 97 --heads 2 --head-dim 32 \
    --causal --layout zigzag --reps 2 --check --json)
  code=$?
  [ "$code" -eq 0 ] || fail "mpirun -np 2 bench exit code $code"
  [ "$(echo "$json" | wc -l)" -eq 2 ] || fail "mpirun -np 2 bench should print two records (rank 0 only): $json"
  echo "$json" | grep -q '"ranks": 2' || fail "mpirun -np 2 bench does not report ranks 2: $json"
  errors=$(echo "$json" | sed -n 's/.*"max_rel_err": \([0-9.e+-]*\).*/\1/p')
  [ -n "$errors" ] || fail "mpirun -np 2 bench --check reports no error: $json"
  for error in $errors; do
    awk -v e="$error" 'BEGIN { exit !(e <= 1e-5) }' || fail "2-rank max_rel_err $error above 1e-5"
  done
fi

# Every registered mixer benchmarks on one rank and, with its state handoff or ring, on three
# (zig-zag, an odd length), each checked against one rank computing the whole sequence. The causal
# mixers (recurrences) refuse a run without --causal.
expect_user_error "s4d without --causal" bench s4d --seq 64
for mixer in $("$longseq" info --json | sed -n 's/.*"mixers": "\([^"]*\)".*/\1/p' | tr ',' ' '); do
  runs=("$longseq")
  if [ ${#mpiexec[@]} -gt 0 ]; then
    runs+=("${mpiexec[*]} -np 3 $longseq --threads 1")
  fi
  for run in "${runs[@]}"; do
    # shellcheck disable=SC2086  # the run is a command line split into words on purpose
    json=$($run bench "$mixer" --seq 61 --heads 2 --head-dim 16 --causal --layout zigzag \
      --reps 1 --warmup 0 --check --json)
    code=$?
    [ "$code" -eq 0 ] || fail "$run bench $mixer exit code $code"
    errors=$(echo "$json" | sed -n 's/.*"max_rel_err": \([0-9.e+-]*\).*/\1/p')
    [ "$(echo "$errors" | wc -w)" -eq 2 ] || fail "$run bench $mixer --check: $json"
    for error in $errors; do
      awk -v e="$error" 'BEGIN { exit !(e <= 1e-4) }' || fail "$run bench $mixer max_rel_err $error"
    done
  done
done

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "all CLI checks passed"
