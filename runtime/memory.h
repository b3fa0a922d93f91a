// Aligned host and CUDA allocation with current / peak accounting per device.
//
// The counters are process-wide, as the allocators they watch are: a benchmark resets the peak,
// runs, and reads how much memory above its starting point the operation needed.
#pragma once

#include <cstddef>
#include <cstdint>

#include "runtime/device.h"

namespace longseq {

inline constexpr std::size_t kHostAlignment = 64;

struct MemoryUsage {
  std::int64_t current_bytes = 0;
  std::int64_t peak_bytes = 0;
};

MemoryUsage memory_usage(Device device);
// Sets the peak to the current allocation, so a later peak measures growth from now.
void reset_peak_memory(Device device);
// Caps the bytes held through allocate() on `device` (0: no cap, the default): an allocation that
// would hold more throws UserError naming the cap, so that a benchmark run that outgrows its
// memory limit fails cleanly instead of swapping or being killed.
void set_memory_limit(Device device, std::int64_t bytes);

// Throws Error when the allocation fails; a zero-byte request returns nullptr.
void* allocate(Device device, std::size_t bytes);
void deallocate(Device device, void* pointer, std::size_t bytes) noexcept;

// Copies bytes between any two devices (host <-> CUDA, CUDA <-> CUDA, host <-> host).
void copy_bytes(void* destination, Device destination_device, const void* source,
                Device source_device, std::size_t bytes);
void fill_zero(void* destination, Device device, std::size_t bytes);

// The CUDA side, implemented in runtime/cuda/ or by runtime/no_cuda.cpp.
void* cuda_allocate(std::size_t bytes);
void cuda_deallocate(void* pointer) noexcept;
void cuda_copy(void* destination, Device destination_device, const void* source,
               Device source_device, std::size_t bytes);
void cuda_fill_zero(void* destination, std::size_t bytes);

}  // namespace longseq
