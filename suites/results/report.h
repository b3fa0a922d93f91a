// `longseq report FILE`: tables of the measurements against sequence length, with the fitted
// scaling exponents, and plots (report_plots.h).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "suites/results/run_record.h"

namespace longseq {

// One table per group of runs that differ only in sequence length: (mixer, ranks, pass, device,
// dtype, and any other configuration field that varies in the file). Rows by seq: median time,
// GFLOP/s, ratio to the yardstick, peak memory per rank, bytes sent per rank, max_rel_err; failed
// runs with their message. Under every group with two or more lengths, the least-squares slopes
// of log(time) and log(peak memory) against log(seq) over all successful runs (1: linear, 2:
// quadratic).
std::string report_tables(const std::vector<RunRecord>& records);

// The least-squares slope of log(y) against log(x) over the points with x > 0 and y > 0; NaN when
// fewer than two distinct x remain.
double loglog_slope(const std::vector<std::pair<double, double>>& points);

}  // namespace longseq
