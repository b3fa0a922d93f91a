// Seeded random fills against their definition from runtime/philox.h: uniform fills are exact
// (the same bits on every device), normal fills agree to the last bits of logf/cosf.
#include "kernels/random.h"

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/philox.h"
#include "tests/kernels/harness.h"

namespace longseq::test {
namespace {

class RandomFillCase final : public KernelCase {
 public:
  RandomFillCase(bool normal, Shape shape, RandomStream random)
      : normal_(normal), shape_(std::move(shape)), random_(random) {}

  [[nodiscard]] std::string name() const override {
    return fmt::format("fill_{}_n{}_seed{}_stream{}", normal_ ? "normal" : "uniform",
                       shape_numel(shape_), random_.seed, random_.stream);
  }

  [[nodiscard]] std::vector<DType> dtypes(Device) const override {
    return {DType::f32, DType::bf16, DType::f16};
  }

  // Uniform values are defined bit for bit; normal ones through logf/cosf (last-bit differences).
  [[nodiscard]] double tolerance(DType dtype) const override {
    if (!normal_) {
      return 0.0;
    }
    return dtype == DType::f32 ? 1e-6 : default_tolerance(dtype);
  }

  [[nodiscard]] double flops() const override {
    return 100.0 * static_cast<double>(shape_numel(shape_));
  }

  [[nodiscard]] Results run(ComputeContext& context, Device device, DType dtype) const override {
    const Tensor tensor = Tensor::empty(shape_, dtype, device);
    if (normal_) {
      fill_normal(context, tensor, random_, kMean, kStddev);
    } else {
      fill_uniform(context, tensor, random_, kLow, kHigh);
    }
    context.synchronize();
    return {{"values", to_host(tensor)}};
  }

  [[nodiscard]] Results reference(DType dtype) const override {
    std::vector<double> values(static_cast<std::size_t>(shape_numel(shape_)));
    for (std::size_t i = 0; i < values.size(); ++i) {
      // Drawn in fp32 as the contract says, then rounded to the tensor's dtype.
      const float value =
          normal_
              ? kMean + kStddev * random_normal(random_.seed, random_.stream, i)
              : kLow + (kHigh - kLow) * (1.0f - random_uniform(random_.seed, random_.stream, i));
      values[i] = value;
    }
    return {{"values", tensor_from(values, shape_, DType::f32).to(dtype).to(DType::f64)}};
  }

  void check_properties(const Results& results) const override {
    if (normal_) {
      return;
    }
    std::int64_t outside = 0;
    for (const double value : to_double_vector(results[0].tensor)) {
      outside += value >= kLow && value <= kHigh ? 0 : 1;
    }
    EXPECT_EQ(outside, 0) << "uniform values outside [low, high]";
  }

 private:
  static constexpr float kLow = -2.0f;
  static constexpr float kHigh = 3.0f;
  static constexpr float kMean = 0.5f;
  static constexpr float kStddev = 2.0f;
  bool normal_;
  Shape shape_;
  RandomStream random_;
};

std::vector<KernelCasePtr> random_fill_cases() {
  return {
      std::make_shared<RandomFillCase>(false, Shape{1001}, RandomStream{7, 0}),
      std::make_shared<RandomFillCase>(false, Shape{3, 257, 5}, RandomStream{7, 1ull << 40}),
      std::make_shared<RandomFillCase>(true, Shape{1001}, RandomStream{8, 3}),
      std::make_shared<RandomFillCase>(true, Shape{64, 129}, RandomStream{(1ull << 33) + 5, 2})};
}

INSTANTIATE_TEST_SUITE_P(RandomFill, CpuBackend,
                         testing::ValuesIn(cases_for(Device::cpu, random_fill_cases())), case_name);
INSTANTIATE_TEST_SUITE_P(RandomFill, CudaBackend,
                         testing::ValuesIn(cases_for(Device::cuda, random_fill_cases())),
                         case_name);

}  // namespace
}  // namespace longseq::test
