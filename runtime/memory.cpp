#include "runtime/memory.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

#include "runtime/error.h"

namespace longseq {

namespace {

struct MemoryCounters {
  std::atomic<std::int64_t> current{0};
  std::atomic<std::int64_t> peak{0};
  std::atomic<std::int64_t> limit{0};
};

MemoryCounters& counters(Device device) {
  static MemoryCounters host;
  static MemoryCounters cuda;
  return device == Device::cpu ? host : cuda;
}

void record_allocation(Device device, std::int64_t bytes) {
  MemoryCounters& c = counters(device);
  const std::int64_t now = c.current.fetch_add(bytes) + bytes;
  std::int64_t peak = c.peak.load();
  while (now > peak && !c.peak.compare_exchange_weak(peak, now)) {
  }
}

}  // namespace

MemoryUsage memory_usage(Device device) {
  const MemoryCounters& c = counters(device);
  return MemoryUsage{c.current.load(), c.peak.load()};
}

void reset_peak_memory(Device device) {
  MemoryCounters& c = counters(device);
  c.peak.store(c.current.load());
}

void set_memory_limit(Device device, std::int64_t bytes) {
  LONGSEQ_CHECK(bytes >= 0, "[set_memory_limit] negative limit {}", bytes);
  counters(device).limit.store(bytes);
}

void* allocate(Device device, std::size_t bytes) {
  if (bytes == 0) {
    return nullptr;
  }
  const MemoryCounters& c = counters(device);
  const std::int64_t limit = c.limit.load();
  LONGSEQ_REQUIRE(limit == 0 || c.current.load() + static_cast<std::int64_t>(bytes) <= limit,
                  "[allocate] {} bytes more on {} would exceed the memory limit of {} bytes ({} "
                  "held)",
                  bytes, device_name(device), limit, c.current.load());
  void* pointer = nullptr;
  if (device == Device::cpu) {
    const std::size_t rounded = (bytes + kHostAlignment - 1) / kHostAlignment * kHostAlignment;
    pointer = std::aligned_alloc(kHostAlignment, rounded);
    LONGSEQ_CHECK(pointer != nullptr, "[allocate] host allocation of {} bytes failed", bytes);
  } else {
    pointer = cuda_allocate(bytes);
  }
  record_allocation(device, static_cast<std::int64_t>(bytes));
  return pointer;
}

void deallocate(Device device, void* pointer, std::size_t bytes) noexcept {
  if (pointer == nullptr) {
    return;
  }
  if (device == Device::cpu) {
    std::free(pointer);
  } else {
    cuda_deallocate(pointer);
  }
  counters(device).current.fetch_sub(static_cast<std::int64_t>(bytes));
}

void copy_bytes(void* destination, Device destination_device, const void* source,
                Device source_device, std::size_t bytes) {
  if (bytes == 0) {
    return;
  }
  if (destination_device == Device::cpu && source_device == Device::cpu) {
    std::memcpy(destination, source, bytes);
  } else {
    cuda_copy(destination, destination_device, source, source_device, bytes);
  }
}

void fill_zero(void* destination, Device device, std::size_t bytes) {
  if (bytes == 0) {
    return;
  }
  if (device == Device::cpu) {
    std::memset(destination, 0, bytes);
  } else {
    cuda_fill_zero(destination, bytes);
  }
}

}  // namespace longseq
