// Running a helper program (the plot script's Python) and collecting what it prints.
#pragma once

#include <string>
#include <vector>

namespace longseq {

struct ProcessOutcome {
  int exit_code = -1;  // the exit status; 128 + the signal when a signal ended it
  std::string output;  // standard output and standard error, interleaved as written
};

// Runs argv[0] (a path, not searched in PATH) with the arguments argv[1..], in this process's
// environment, and waits for it. Throws Error when it cannot be started.
ProcessOutcome run_process(const std::vector<std::string>& argv);

}  // namespace longseq
