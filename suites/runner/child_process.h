// A child process for `suite run`: one MPI job (or one directly started worker) per group of runs,
// in its own process group so that a run past its time limit is stopped with every rank and
// helper the launcher started.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace longseq {

class ChildProcess {
 public:
  // Starts `argv` (argv[0] looked up on PATH) with stdout and stderr appended to `log_path` and
  // `environment` ("NAME=value") added to this process's environment. Throws UserError when the
  // program cannot be started.
  ChildProcess(const std::vector<std::string>& argv, const std::vector<std::string>& environment,
               const std::string& log_path);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // The exit status once it has ended (0..255, or 128 + signal), without waiting.
  std::optional<int> poll();
  // SIGTERM to the whole process group, then SIGKILL after `grace_s`; waits for the child.
  int stop(double grace_s = 5.0);

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
};

}  // namespace longseq
