// Devices and what the process can see of them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace longseq {

enum class Device : std::uint8_t { cpu, cuda };

std::string_view device_name(Device device);
// Parses "cpu" or "cuda"; throws UserError otherwise.
Device parse_device(std::string_view name);

// True when this build has CUDA support compiled in.
bool cuda_built();
// Number of usable CUDA devices: 0 without a driver, without a GPU, or without CUDA support.
int cuda_device_count();
// Why there is no usable GPU, e.g. "not built with CUDA" or "cudaGetDeviceCount: ... (35)"; empty
// when a GPU is present.
std::string cuda_unavailable_reason();
// "NVIDIA H100 80GB HBM3 (sm_90, 79 GiB)" for device 0, or the reason it is unavailable.
std::string cuda_device_description();
// The CPU model and number of online cores, e.g. "Intel(R) Xeon(R) ... (2 cores)".
std::string cpu_description();

}  // namespace longseq
