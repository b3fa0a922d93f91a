#include "runtime/device.h"

#include <fstream>
#include <thread>

#include "runtime/error.h"

namespace longseq {

std::string_view device_name(Device device) { return device == Device::cpu ? "cpu" : "cuda"; }

Device parse_device(std::string_view name) {
  if (name == "cpu") return Device::cpu;
  if (name == "cuda") return Device::cuda;
  throw UserError(fmt::format("unknown device '{}' (expected cpu or cuda)", name));
}

std::string cpu_description() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  std::string model = "unknown CPU";
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) {
        model = line.substr(colon + 2);
      }
      break;
    }
  }
  return fmt::format("{} ({} cores)", model, std::thread::hardware_concurrency());
}

}  // namespace longseq
