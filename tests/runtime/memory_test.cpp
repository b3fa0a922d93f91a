#include "runtime/memory.h"

#include <gtest/gtest.h>

#include <cstdint>

#include "runtime/tensor.h"

namespace longseq {
namespace {

TEST(Memory, HostAllocationsAreAlignedAndCounted) {
  const MemoryUsage before = memory_usage(Device::cpu);
  reset_peak_memory(Device::cpu);
  {
    const Tensor a = Tensor::empty({1000}, DType::f32);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a.raw_data()) % kHostAlignment, 0u);
    EXPECT_EQ(memory_usage(Device::cpu).current_bytes - before.current_bytes, 4000);
    { const Tensor b = Tensor::empty({500}, DType::f64); }
    EXPECT_EQ(memory_usage(Device::cpu).peak_bytes - before.current_bytes, 8000);
  }
  EXPECT_EQ(memory_usage(Device::cpu).current_bytes, before.current_bytes);
  reset_peak_memory(Device::cpu);
  EXPECT_EQ(memory_usage(Device::cpu).peak_bytes, before.current_bytes);
}

TEST(Memory, ZeroBytesIsNull) { EXPECT_EQ(allocate(Device::cpu, 0), nullptr); }

}  // namespace
}  // namespace longseq
