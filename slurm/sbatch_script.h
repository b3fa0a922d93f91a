// sbatch scripts for the jobs of a suite: one job per rank count, or one job array whose elements
// are the rank counts. Each job runs `longseq suite run` for its rank count, which launches the
// ranks with `srun --mpi=pmix` and resumes from its results file, so that a job requeued after
// preemption or a time limit goes on where it stopped: Slurm sends USR1 to the batch shell
// `signal_seconds` before the limit, and the script stops the suite and requeues the job.
#pragma once

#include <string>
#include <vector>

namespace longseq {

struct SbatchJob {
  std::string job_name;
  std::vector<int> rank_counts;  // one: a plain job; several: a job array over them
  int nodes = 0;                 // 0: not set (Slurm places the tasks)
  int gpus_per_task = 0;         // 0: not set
  int cpus_per_task = 0;         // 0: not set
  std::string time = "01:00:00";
  std::string partition;    // empty: not set
  std::string account;      // empty: not set
  std::string output_path;  // sbatch --output, e.g. DIR/%x-%j.out (array: %x-%A_%a.out)
  int signal_seconds = 120;
  // The suite run command, with the placeholder {ranks} where the rank count goes (in the
  // results path and after --ranks).
  std::vector<std::string> command;
};

// The text of the script (bash). Every command word is quoted for the shell.
std::string sbatch_script(const SbatchJob& job);

// Quotes a word for bash (single quotes).
std::string shell_quote(const std::string& word);

}  // namespace longseq
