// `longseq compare CURRENT BASELINE`: the regression check between two sets of records.
//
// Records are matched by (run_key, pass). For a pair where both ran:
//   time     ratio = current median_s / baseline median_s, times current yardstick_gflops /
//            baseline yardstick_gflops when the current record's normalise is "yardstick" (time
//            in units of the machine's GEMM speed); a regression when ratio > 1 + tolerance_time,
//            an improvement when ratio < 1 / (1 + tolerance_time)
//   memory   peak_mem_bytes and bytes_sent regress when current > baseline * (1 + tolerance_memory)
//   error    max_rel_err regresses when current > baseline + tolerance_error (both present)
// Tolerances come from the current record (tolerance_time, tolerance_memory, tolerance_error;
// 0.10, 0.0 and 1e-4 when absent). A run failed now but not in the baseline regresses; a run only
// in the baseline is missing, which also fails the check (a check that silently stops measuring
// must not pass); a run only in the current records is new.
#pragma once

#include <string>
#include <vector>

#include "suites/results/run_record.h"

namespace longseq {

struct CompareOutcome {
  std::string text;        // summary line and the table of the largest changes, to print
  bool regressed = false;  // any regression or missing run: `longseq compare` exits 1
  int matched = 0;
  int regressions = 0;  // matched runs that regressed (failed now, slower, more memory, error)
  int improved = 0;     // faster beyond the tolerance, or failed in the baseline and ok now
  int missing = 0;
  int added = 0;  // new runs
};

CompareOutcome compare_results(const std::vector<RunRecord>& current,
                               const std::vector<RunRecord>& baseline);

}  // namespace longseq
