#!/usr/bin/env bash
# `longseq suite plan | run | export`, `compare` and `report` on a tiny suite: a full run, resume
# without repeating finished runs, a driver killed with SIGKILL mid-suite leaving every finished
# record readable and the same command finishing the rest, refusal to overwrite a file that is not
# a results file, bad suites with exit 2, and compare exiting 1 on a doubled time.
# Usage: suite_test.sh LONGSEQ TINY_SUITE
set -uo pipefail
longseq=$1
suite=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
records() { "$longseq" suite export "$1" -o "$work/count.jsonl" >/dev/null && wc -l < "$work/count.jsonl"; }

# 12 runs, each measuring fwd and bwd: 24 records.
"$longseq" suite plan "$suite" > "$work/plan.txt" || fail "suite plan exited $?"
grep -q "flash" "$work/plan.txt" || fail "the plan lists no flash run"

"$longseq" suite run "$suite" -o "$work/full.h5" > "$work/full.txt" 2>&1
status=$?
[ $status = 0 ] || { cat "$work/full.txt"; fail "suite run exited $status"; }
[ "$(records "$work/full.h5")" = 24 ] || fail "expected 24 records, got $(records "$work/full.h5")"
grep -q "12 to run" "$work/full.txt" || fail "the first run did not plan 12 runs"
grep -q "report: longseq report" "$work/full.txt" || fail "no pointer to the report"
grep -q "ok" "$work/count.jsonl" || fail "no successful record"
if grep -q '"status": "failed"' "$work/count.jsonl"; then fail "a run failed"; grep failed "$work/count.jsonl" | head -3; fi

# Resume: nothing runs again, the records stay as they were.
cp "$work/count.jsonl" "$work/before.jsonl"
"$longseq" suite run "$suite" -o "$work/full.h5" > "$work/again.txt" 2>&1 || fail "resume exited $?"
grep -q "12 already in .*, 0 to run" "$work/again.txt" || { cat "$work/again.txt"; fail "resume repeated runs"; }
records "$work/full.h5" >/dev/null
cmp -s "$work/count.jsonl" "$work/before.jsonl" || fail "resume changed the records"

# Killed with SIGKILL after the first records: the file keeps them, the rerun does the rest.
"$longseq" suite run "$suite" -o "$work/killed.h5" > "$work/killed.txt" 2>&1 &
driver=$!
for _ in $(seq 1 600); do
  [ -f "$work/killed.h5" ] && [ "$(records "$work/killed.h5" 2>/dev/null || echo 0)" -ge 4 ] && break
  sleep 0.1
done
kill -KILL $driver
wait $driver 2>/dev/null
sleep 1
kept=$(records "$work/killed.h5") || fail "the results file of a killed suite is unreadable"
[ "${kept:-0}" -ge 4 ] && [ "${kept:-0}" -lt 24 ] || fail "a killed suite kept $kept records"
"$longseq" suite run "$suite" -o "$work/killed.h5" > "$work/resumed.txt" 2>&1 || fail "the rerun exited $?"
left=$((12 - kept / 2))
grep -q "$((12 - left)) already in .*, $left to run" "$work/resumed.txt" ||
  { cat "$work/resumed.txt"; fail "the rerun did not resume from $kept records"; }
[ "$(records "$work/killed.h5")" = 24 ] || fail "the resumed suite has $(records "$work/killed.h5") records"

# A file that is not a results file is never overwritten.
head -c 1000 /dev/urandom > "$work/other.h5"
cp "$work/other.h5" "$work/other.copy"
"$longseq" suite run "$suite" -o "$work/other.h5" > "$work/other.txt" 2>&1
status=$?
[ $status = 2 ] || fail "suite run into a foreign file exited $status"
cmp -s "$work/other.h5" "$work/other.copy" || fail "a foreign file was changed"
[ "$(wc -l < "$work/other.txt")" = 1 ] || fail "more than one line of error: $(cat "$work/other.txt")"

# A malformed suite: exit 2, one line with file:line:column, the results file untouched.
printf 'suite: broken\nmatrix:\n  mixer: [flash\n' > "$work/broken.yaml"
cp "$work/full.h5" "$work/full.copy"
"$longseq" suite run "$work/broken.yaml" -o "$work/full.h5" > "$work/broken.txt" 2>&1
status=$?
[ $status = 2 ] || fail "a malformed suite exited $status"
grep -Eq "broken.yaml:[0-9]+:[0-9]+:" "$work/broken.txt" || fail "no file:line:column: $(cat "$work/broken.txt")"
cmp -s "$work/full.h5" "$work/full.copy" || fail "a malformed suite changed the results file"

# compare: 0 on an unchanged copy, 1 with one run's time doubled.
"$longseq" compare "$work/full.h5" "$work/full.copy" > "$work/same.txt" || fail "compare of a copy exited $?"
"$longseq" suite export "$work/full.h5" -o "$work/slow.jsonl" >/dev/null
awk 'NR == 1 && match($0, /"median_s": [0-9.eE+-]+/) {
       value = substr($0, RSTART + 12, RLENGTH - 12)
       $0 = substr($0, 1, RSTART - 1) "\"median_s\": " sprintf("%.17g", 2 * value) substr($0, RSTART + RLENGTH)
     } { print }' "$work/slow.jsonl" > "$work/slow2.jsonl"
cmp -s "$work/slow.jsonl" "$work/slow2.jsonl" && fail "the slowdown was not injected"
"$longseq" compare "$work/slow2.jsonl" "$work/full.h5" > "$work/slow.txt"
status=$?
[ $status = 1 ] || { cat "$work/slow.txt"; fail "compare of a doubled time exited $status"; }

# report: tables with slopes (plots where Python can draw them).
"$longseq" report "$work/full.h5" --plots "$work/plots" > "$work/report.txt" || fail "report exited $?"
grep -qi "slope" "$work/report.txt" || fail "the report has no slopes"

[ $failures = 0 ] && echo "suite_test: all passed"
exit $failures
