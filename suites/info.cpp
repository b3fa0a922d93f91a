#include "suites/info.h"

#include <fmt/format.h>
#include <spdlog/version.h>

#include <utility>
#include <vector>

#include "kernels/gemm.h"
#include "models/mixer_registry.h"
#include "parallel/mpi_session.h"
#include "runtime/device.h"
#include "suites/build_info.h"
#include "suites/yardstick.h"

namespace longseq {

std::string describe_build_and_machine(ComputeContext& context, bool json) {
  std::vector<std::pair<std::string, std::string>> fields = {
      {"version", kBuildVersion},
      {"git_commit", kBuildGitCommit},
      {"compiler", kBuildCompiler},
      {"build_type", kBuildType},
      {"cxx_flags", kBuildCxxFlags},
      {"cuda_built", cuda_built() ? "yes" : "no"},
      {"cuda_architectures", kBuildCudaArchitectures},
      {"cpu", cpu_description()},
      {"cpu_threads", std::to_string(context.cpu_threads())},
      {"gpu", cuda_device_description()},
      {"blas", cpu_blas_description()},
      {"mpi", MpiSession::library_version()},
      {"mixers", fmt::format("{}", fmt::join(registered_mixers(), ", "))},
      {"fmt", std::to_string(FMT_VERSION)},
      {"spdlog", fmt::format("{}.{}.{}", SPDLOG_VER_MAJOR, SPDLOG_VER_MINOR, SPDLOG_VER_PATCH)},
  };
  const Yardstick cpu = measure_yardstick(context, Device::cpu, DType::f32);
  fields.emplace_back("cpu_yardstick_gflops",
                      fmt::format("{:.1f} ({} n={})", cpu.gflops, cpu.name, cpu.n));
  if (cuda_device_count() > 0) {
    for (const DType dtype : {DType::bf16, DType::f32}) {
      const Yardstick gpu = measure_yardstick(context, Device::cuda, dtype);
      fields.emplace_back(fmt::format("gpu_yardstick_{}_gflops", dtype_name(dtype)),
                          fmt::format("{:.1f} ({} n={})", gpu.gflops, gpu.name, gpu.n));
    }
  }
  std::string text;
  if (json) {
    text = "{";
    for (std::size_t i = 0; i < fields.size(); ++i) {
      std::string value;
      for (const char c : fields[i].second) {
        value += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
      }
      text += fmt::format("{}\"{}\": \"{}\"", i == 0 ? "" : ", ", fields[i].first, value);
    }
    return text + "}\n";
  }
  for (const auto& [key, value] : fields) {
    text += fmt::format("{:<22} {}\n", key, value);
  }
  return text;
}

}  // namespace longseq
