// How `longseq bench` prints its results: a table for people, one JSON object per line for tools.
#pragma once

#include <string>
#include <vector>

#include "suites/mixer_bench.h"

namespace longseq {

std::string result_json(const BenchResult& result, int threads);
std::string results_table(const std::vector<BenchResult>& results);

}  // namespace longseq
