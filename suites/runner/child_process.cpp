#include "suites/runner/child_process.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "runtime/error.h"

namespace longseq {

namespace {

int decode(int status) {
  if (WIFEXITED(status)) {
    return WEXITSTATUS(status);
  }
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 1;
}

}  // namespace

ChildProcess::ChildProcess(const std::vector<std::string>& argv,
                           const std::vector<std::string>& environment,
                           const std::string& log_path) {
  LONGSEQ_CHECK(!argv.empty(), "[child_process] no program");
  const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  LONGSEQ_REQUIRE(log >= 0, "suite: cannot write the log {}: {}", log_path, std::strerror(errno));
  // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& arg : argv) {
    args.push_back(const_cast<char*>(arg.c_str()));
  }
  args.push_back(nullptr);
  // The environment: this process's, with `environment` replacing or adding entries.
  std::vector<std::string> entries(environment);
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string text(*entry);
    const std::string name = text.substr(0, text.find('='));
    const bool replaced = std::any_of(environment.begin(), environment.end(), [&](const auto& e) {
      return e.substr(0, e.find('=')) == name;
    });
    if (!replaced) {
      entries.push_back(text);
    }
  }
  std::vector<char*> envp;
  envp.reserve(entries.size() + 1);
  for (std::string& entry : entries) {
    envp.push_back(entry.data());
  }
  envp.push_back(nullptr);
  int ready[2];
  LONGSEQ_CHECK(::pipe2(ready, O_CLOEXEC) == 0, "[child_process] pipe: {}", std::strerror(errno));
  const pid_t parent = ::getpid();
  pid_ = ::fork();
  LONGSEQ_CHECK(pid_ >= 0, "[child_process] fork: {}", std::strerror(errno));
  if (pid_ == 0) {
    // A job must not outlive its driver (killed, or gone with its terminal): the launcher gets
    // SIGTERM when the driver dies, and passes it on to its ranks.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) {
      ::_exit(127);
    }
    ::setpgid(0, 0);
    ::dup2(log, STDOUT_FILENO);
    ::dup2(log, STDERR_FILENO);
    const int null = ::open("/dev/null", O_RDONLY);
    if (null >= 0) {
      ::dup2(null, STDIN_FILENO);
    }
    ::execvpe(args[0], args.data(), envp.data());
    const int error = errno;
    [[maybe_unused]] const ssize_t written = ::write(ready[1], &error, sizeof(error));
    ::_exit(127);
  }
  ::setpgid(pid_, pid_);  // also from the parent, so that stop() never races the child's call
  ::close(log);
  ::close(ready[1]);
  int error = 0;
  const ssize_t got = ::read(ready[0], &error, sizeof(error));
  ::close(ready[0]);
  if (got == sizeof(error)) {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    throw UserError(fmt::format("suite: cannot start {}: {}", argv[0], std::strerror(error)));
  }
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !status_) {
    stop(1.0);
  }
}

std::optional<int> ChildProcess::poll() {
  if (!status_ && pid_ > 0) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      status_ = decode(status);
      // Whatever the launcher left behind in its group goes with it.
      ::kill(-pid_, SIGKILL);
    }
  }
  return status_;
}

int ChildProcess::stop(double grace_s) {
  if (poll()) {
    return *status_;
  }
  ::kill(-pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(grace_s);
  while (std::chrono::steady_clock::now() < deadline) {
    if (poll()) {
      return *status_;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(-pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  status_ = decode(status);
  return *status_;
}

}  // namespace longseq
