#include "runtime/memory.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "runtime/error.h"
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

TEST(Memory, LimitRefusesAllocationsBeyondItAndIsLifted) {
  const std::int64_t held = memory_usage(Device::cpu).current_bytes;
  set_memory_limit(Device::cpu, held + 4096);
  { const Tensor fits = Tensor::empty({1024}, DType::f32); }
  try {
    const Tensor too_big = Tensor::empty({1025}, DType::f32);
    ADD_FAILURE() << "an allocation beyond the limit succeeded";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("memory limit"), std::string::npos) << e.what();
  }
  EXPECT_EQ(memory_usage(Device::cpu).current_bytes, held);
  set_memory_limit(Device::cpu, 0);
  { const Tensor lifted = Tensor::empty({100000}, DType::f32); }
}

}  // namespace
}  // namespace longseq
