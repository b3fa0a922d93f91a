// `longseq suite run FILE -o RESULTS`: runs a suite, one MPI job per rank count.
//
// The driver is one plain process. For each rank count it starts a worker job
// (suites/runner/suite_worker.h) through the launcher (mpirun, srun, or the worker itself for one
// rank), follows the job's stream file, and after every finished run rewrites the results file
// whole (suites/results/results_file.h: written aside and renamed), so that a killed suite leaves
// every earlier record readable. Runs already in RESULTS are not repeated (resume); a run past
// its time limit, or whose job dies, is recorded as failed with the reason, and a new job takes
// the runs left. It prints a line per finished run (run i of n, elapsed, estimated time left by
// the predicted FLOPs) and a summary table at the end.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace longseq {

enum class Launcher : std::uint8_t { automatic, mpirun, srun };

struct SuiteRunRequest {
  std::string suite_path;
  std::string results_path;
  std::vector<int> only_ranks;              // run only these rank counts (empty: all)
  Launcher launcher = Launcher::automatic;  // automatic: srun inside a Slurm job, else mpirun
  bool retry_failed = false;                // run again the runs RESULTS records as failed
  int threads = 0;         // CPU threads per rank (0: the cores shared among the ranks)
  std::string executable;  // this program, started as the worker
};

Launcher parse_launcher(const std::string& name);

// Returns the process exit code: 0 when every run succeeded, 1 when some failed. Bad input
// (suite file, a RESULTS that is not a results file or holds another suite) throws UserError
// before anything is written.
int run_suite(const SuiteRunRequest& request, std::ostream& out);

}  // namespace longseq
