#include "runtime/process_memory.h"

#include <fstream>
#include <sstream>
#include <string>

namespace longseq {

ResidentMemory resident_memory() {
  ResidentMemory memory;
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    std::istringstream fields(line);
    std::string key;
    std::int64_t kibibytes = 0;
    fields >> key >> kibibytes;
    if (key == "VmRSS:") {
      memory.current_bytes = kibibytes * 1024;
    } else if (key == "VmHWM:") {
      memory.peak_bytes = kibibytes * 1024;
    }
  }
  return memory;
}

bool reset_resident_peak() {
  std::ofstream clear_refs("/proc/self/clear_refs");
  clear_refs << "5";
  clear_refs.flush();
  return static_cast<bool>(clear_refs);
}

}  // namespace longseq
