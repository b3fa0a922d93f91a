// GELU (exact, erf form) against the reference, forward and backward; the reference against
// finite differences and known values.
#include "kernels/activation.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/reference.h"
#include "tests/kernels/harness.h"

namespace longseq::test {
namespace {

class GeluCase final : public KernelCase {
 public:
  GeluCase(Shape shape, double input_scale, std::uint64_t seed)
      : shape_(std::move(shape)), input_scale_(input_scale), seed_(seed) {}

  [[nodiscard]] std::string name() const override {
    std::string text = "gelu";
    for (const std::int64_t extent : shape_) {
      text += fmt::format("_{}", extent);
    }
    return text + fmt::format("_scale{}", static_cast<int>(input_scale_));
  }

  [[nodiscard]] std::vector<DType> dtypes(Device) const override { return {DType::f32}; }

  [[nodiscard]] double flops() const override {
    return 30.0 * static_cast<double>(shape_numel(shape_));
  }

  [[nodiscard]] Results run(ComputeContext& context, Device device, DType dtype) const override {
    const Tensor x = on_device(random_normal_tensor(shape_, seed_, 1, dtype, input_scale_), device);
    const Tensor grad_y = on_device(random_normal_tensor(shape_, seed_, 2, dtype), device);
    const Tensor y = Tensor::empty(shape_, dtype, device);
    const Tensor grad_x = Tensor::empty(shape_, dtype, device);
    gelu_forward(context, x, y);
    gelu_backward(context, grad_y, x, grad_x);
    context.synchronize();
    return {{"y", to_host(y)}, {"grad_x", to_host(grad_x)}};
  }

  [[nodiscard]] Results reference(DType dtype) const override {
    const Tensor x = random_normal_tensor(shape_, seed_, 1, dtype, input_scale_);
    const Tensor grad_y = random_normal_tensor(shape_, seed_, 2, dtype);
    const Tensor y = Tensor::empty(shape_, DType::f64);
    const Tensor grad_x = Tensor::empty(shape_, DType::f64);
    reference::gelu_forward(x, y);
    reference::gelu_backward(grad_y, x, grad_x);
    return {{"y", y}, {"grad_x", grad_x}};
  }

 private:
  Shape shape_;
  double input_scale_;
  std::uint64_t seed_;
};

std::vector<KernelCasePtr> gelu_cases() {
  return {std::make_shared<GeluCase>(Shape{1000}, 1.0, 81),
          std::make_shared<GeluCase>(Shape{37, 129}, 3.0, 82),
          std::make_shared<GeluCase>(Shape{4, 5, 6, 7}, 10.0, 83),
          std::make_shared<GeluCase>(Shape{1}, 1.0, 84)};
}

INSTANTIATE_TEST_SUITE_P(Gelu, CpuBackend, testing::ValuesIn(cases_for(Device::cpu, gelu_cases())),
                         case_name);
INSTANTIATE_TEST_SUITE_P(Gelu, CudaBackend,
                         testing::ValuesIn(cases_for(Device::cuda, gelu_cases())), case_name);

TEST(ReferenceGelu, KnownValues) {
  // gelu(0) = 0, gelu(1) = Phi(1) = 0.8413447460685429, gelu(-1) = -(1 - Phi(1)).
  const Tensor x = tensor_from({0.0, 1.0, -1.0, 8.0}, {4});
  const Tensor y = Tensor::empty({4}, DType::f64);
  reference::gelu_forward(x, y);
  EXPECT_DOUBLE_EQ(y.data<double>()[0], 0.0);
  EXPECT_NEAR(y.data<double>()[1], 0.8413447460685429, 1e-15);
  EXPECT_NEAR(y.data<double>()[2], -0.15865525393145707, 1e-15);
  EXPECT_NEAR(y.data<double>()[3], 8.0, 1e-12);
}

TEST(ReferenceGelu, GradientMatchesFiniteDifferences) {
  const Tensor x = random_normal_tensor({40}, 85, 1, DType::f64, 2.5);
  const Tensor weights = random_normal_tensor({40}, 85, 2, DType::f64);
  const auto loss = [&] {
    const Tensor y = Tensor::empty({40}, DType::f64);
    reference::gelu_forward(x, y);
    return weighted_sum(y, weights);
  };
  const Tensor grad_x = Tensor::empty({40}, DType::f64);
  reference::gelu_backward(weights, x, grad_x);
  expect_gradient_matches("grad_x", grad_x, finite_difference_gradient(x, loss), 1e-7);
}

}  // namespace
}  // namespace longseq::test
