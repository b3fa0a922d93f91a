// The records a run of a suite produces (suites/results/run_record.h lists the fields): one per
// measured pass when it succeeds, one with status "failed" and the reason when it does not. Both
// carry the run's full config, limits and tolerances, the build and the machine, so that a record
// read on its own says what was measured, where and how.
#pragma once

#include <string>
#include <vector>

#include "suites/mixer_bench.h"
#include "suites/results/run_record.h"
#include "suites/spec/suite_spec.h"

namespace longseq {

// One record per BenchResult.
std::vector<RunRecord> success_records(const Suite& suite, const SuiteRun& run,
                                       const std::vector<BenchResult>& results, int threads);

// The run failed (an exception, a time or memory limit, a worker that died): one record.
RunRecord failure_record(const Suite& suite, const SuiteRun& run, const std::string& message);

// run_key and pass of a record: what identifies a measurement across results files.
std::string measurement_key(const RunRecord& record);

}  // namespace longseq
