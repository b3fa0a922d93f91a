#include "runtime/error.h"

#include <unistd.h>

#include <array>
#include <cstdlib>

namespace longseq {

namespace {

int launcher_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"}) {
    if (const char* value = std::getenv(name)) {
      return std::atoi(value);
    }
  }
  return 0;
}

}  // namespace

std::string process_location() {
  std::array<char, 256> host{};
  if (gethostname(host.data(), host.size() - 1) != 0) {
    host[0] = '?';
  }
  return fmt::format("rank {} on {}", launcher_rank(), host.data());
}

void raise_check_failure(const char* condition, const char* file, int line,
                         const std::string& message) {
  throw Error(fmt::format("{} (check `{}` failed at {}:{}, {})", message, condition, file, line,
                          process_location()));
}

void raise_call_failure(const char* call, const std::string& status, const char* file, int line) {
  throw Error(
      fmt::format("`{}` failed: {} at {}:{}, {}", call, status, file, line, process_location()));
}

}  // namespace longseq
