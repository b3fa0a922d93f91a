// Runtime behaviour that needs a GPU: skipped with the reason when there is none.
#include <gtest/gtest.h>

#include "runtime/context.h"
#include "runtime/memory.h"
#include "runtime/tensor.h"

namespace longseq {
namespace {

TEST(RuntimeCuda, DeviceRoundTripAndAccounting) {
  if (cuda_device_count() == 0) {
    GTEST_SKIP() << "no GPU: " << cuda_unavailable_reason();
  }
  const Tensor host = Tensor::from_vector({1, 2, 3, 4, 5}, {5});
  const std::int64_t before = memory_usage(Device::cuda).current_bytes;
  const Tensor device = host.to(Device::cuda);
  EXPECT_EQ(memory_usage(Device::cuda).current_bytes - before, 20);
  const Tensor back = device.to(Device::cpu);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(back.data<float>()[i], host.data<float>()[i]);
  }
  ComputeContext context;
  (void)context.cuda();
  context.synchronize();
}

TEST(RuntimeCuda, UnavailableGpuIsAnErrorNotACrash) {
  if (cuda_device_count() > 0) {
    GTEST_SKIP() << "a GPU is present";
  }
  ComputeContext context;
  EXPECT_THROW((void)context.cuda(), std::exception);
  EXPECT_FALSE(cuda_unavailable_reason().empty());
}

}  // namespace
}  // namespace longseq
