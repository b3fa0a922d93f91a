// `longseq slurm FILE`: the sbatch scripts of a suite (slurm/sbatch_script.h), one per rank count
// or one job array, written to a folder; with --submit, handed to sbatch. Each job writes
// DIR/results-np<P>.h5; `longseq suite collect DIR -o FILE` merges them.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>

namespace longseq {

struct SlurmRequest {
  std::string suite_path;
  std::string out_dir;  // empty: slurm-<suite name> in the working directory
  bool submit = false;
  std::string executable;  // this program (its absolute path goes into the scripts)
  // Overrides of the suite's slurm section.
  std::optional<std::string> partition, account, time;
  std::optional<int> nodes, gpus_per_task, cpus_per_task;
  std::optional<bool> array;
};

// Returns the process exit code. Throws UserError on bad input (suite file, flags) or when sbatch
// refuses a script.
int write_slurm_jobs(const SlurmRequest& request, std::ostream& out);

}  // namespace longseq
