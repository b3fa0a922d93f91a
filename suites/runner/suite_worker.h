// `longseq suite worker`: runs some of a suite's runs inside one MPI job (all with the same rank
// count), started by `suite run` (suites/runner/suite_driver.h), never by people.
//
// Rank 0 appends one JSON object per line to the stream file, flushing each:
//   {"event": "start", "index": I}      before run I
//   a record (suites/runner/run_records.h) per measured pass, or one failed record
//   {"event": "done", "index": I}       after it
// A run that throws on any rank is reported on that rank's standard error as
//   "suite worker: run I failed on rank R: MESSAGE"
// and the job is aborted (a rank that did not throw may be waiting in a collective that will
// never complete); the driver records the failure from that line and starts a new job for the runs
// left. Before each run the allocator is capped at the suite's memory limit per rank.
#pragma once

#include <string>
#include <vector>

namespace longseq {

struct SuiteWorkerRequest {
  std::string suite_path;
  std::vector<std::size_t> runs;  // indices into the expanded suite, all with the same rank count
  std::string stream_path;
  int threads = 0;  // CPU threads per rank
};

// The line prefix of a failure on standard error, followed by "I failed on rank R: MESSAGE".
inline constexpr const char* kWorkerFailurePrefix = "suite worker: run ";

int run_suite_worker(int* argc, char*** argv, const SuiteWorkerRequest& request);

}  // namespace longseq
