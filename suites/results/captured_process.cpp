#include "suites/results/captured_process.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "runtime/error.h"

extern char** environ;

namespace longseq {

ProcessOutcome run_process(const std::vector<std::string>& argv) {
  LONGSEQ_CHECK(!argv.empty(), "[run_process] no program");
  std::array<int, 2> pipe_ends{};
  LONGSEQ_CHECK(::pipe2(pipe_ends.data(), O_CLOEXEC) == 0, "[run_process] pipe: {}",
                std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_ends[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, pipe_ends[1], STDERR_FILENO);
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& arg : argv) {
    args.push_back(const_cast<char*>(arg.c_str()));
  }
  args.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, argv[0].c_str(), &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_ends[1]);
  if (spawned != 0) {
    ::close(pipe_ends[0]);
    LONGSEQ_CHECK(false, "[run_process] cannot start {}: {}", argv[0], std::strerror(spawned));
  }
  ProcessOutcome outcome;
  std::array<char, 4096> buffer{};
  while (true) {
    const ssize_t n = ::read(pipe_ends[0], buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    outcome.output.append(buffer.data(), static_cast<std::size_t>(n));
  }
  ::close(pipe_ends[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    LONGSEQ_CHECK(errno == EINTR, "[run_process] waitpid: {}", std::strerror(errno));
  }
  outcome.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return outcome;
}

}  // namespace longseq
