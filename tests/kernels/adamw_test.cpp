// AdamW against the reference over several steps; the reference's first step by hand.
#include "kernels/adamw.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/reference.h"
#include "tests/kernels/harness.h"

namespace longseq::test {
namespace {

struct AdamWParameters {
  std::int64_t size = 1000;
  int steps = 5;
  double grad_scale = 1.0;  // tiny gradients make eps matter
  AdamWOptions options{.learning_rate = 1e-2f, .weight_decay = 0.1f};
  std::uint64_t seed = 1;
};

class AdamWCase final : public KernelCase {
 public:
  explicit AdamWCase(AdamWParameters parameters) : p_(parameters) {}

  [[nodiscard]] std::string name() const override {
    return fmt::format("adamw_n{}_steps{}{}", p_.size, p_.steps,
                       p_.grad_scale < 1e-3 ? "_tiny_grads" : "");
  }

  [[nodiscard]] std::vector<DType> dtypes(Device) const override { return {DType::f32}; }

  [[nodiscard]] double flops() const override {
    return 15.0 * static_cast<double>(p_.size * p_.steps);
  }

  [[nodiscard]] Results run(ComputeContext& context, Device device, DType dtype) const override {
    const Tensor param = on_device(random_normal_tensor({p_.size}, p_.seed, 0, dtype), device);
    const Tensor m = on_device(Tensor::zeros({p_.size}, dtype), device);
    const Tensor v = on_device(Tensor::zeros({p_.size}, dtype), device);
    for (int step = 1; step <= p_.steps; ++step) {
      AdamWOptions options = p_.options;
      options.step = step;
      adamw_step(context, param, on_device(gradient(step, dtype), device), m, v, options);
    }
    context.synchronize();
    return {{"param", to_host(param)}, {"m", to_host(m)}, {"v", to_host(v)}};
  }

  [[nodiscard]] Results reference(DType dtype) const override {
    const Tensor param = random_normal_tensor({p_.size}, p_.seed, 0, dtype).to(DType::f64).clone();
    const Tensor m = Tensor::zeros({p_.size}, DType::f64);
    const Tensor v = Tensor::zeros({p_.size}, DType::f64);
    for (int step = 1; step <= p_.steps; ++step) {
      AdamWOptions options = p_.options;
      options.step = step;
      reference::adamw_step(param, gradient(step, dtype), m, v, options);
    }
    return {{"param", param}, {"m", m}, {"v", v}};
  }

 private:
  // A fresh gradient for every step.
  [[nodiscard]] Tensor gradient(int step, DType dtype) const {
    return random_normal_tensor({p_.size}, p_.seed, static_cast<std::uint64_t>(step), dtype,
                                p_.grad_scale);
  }

  AdamWParameters p_;
};

std::vector<KernelCasePtr> adamw_cases() {
  return {std::make_shared<AdamWCase>(AdamWParameters{.seed = 101}),
          std::make_shared<AdamWCase>(AdamWParameters{.size = 4099, .steps = 12, .seed = 102}),
          std::make_shared<AdamWCase>(
              AdamWParameters{.size = 257, .steps = 3, .grad_scale = 1e-8, .seed = 103})};
}

INSTANTIATE_TEST_SUITE_P(AdamW, CpuBackend,
                         testing::ValuesIn(cases_for(Device::cpu, adamw_cases())), case_name);
INSTANTIATE_TEST_SUITE_P(AdamW, CudaBackend,
                         testing::ValuesIn(cases_for(Device::cuda, adamw_cases())), case_name);

TEST(ReferenceAdamW, FirstStepMovesBySignOfGradient) {
  // Step 1 from m = v = 0: m / (1 - b1) = g and v / (1 - b2) = g^2, so the update is
  // lr (g / (|g| + eps) + wd p).
  const Tensor param = tensor_from({1.0, -2.0, 0.5}, {3});
  const Tensor grad = tensor_from({0.3, -4.0, 0.0}, {3});
  const Tensor m = Tensor::zeros({3}, DType::f64);
  const Tensor v = Tensor::zeros({3}, DType::f64);
  const AdamWOptions options{.learning_rate = 0.1f, .eps = 1e-8f, .weight_decay = 0.01f, .step = 1};
  reference::adamw_step(param, grad, m, v, options);
  const double lr = options.learning_rate;
  const double wd = options.weight_decay;
  const double eps = options.eps;
  const std::vector<double> expected{1.0 - lr * (0.3 / (0.3 + eps) + wd * 1.0),
                                     -2.0 - lr * (-4.0 / (4.0 + eps) + wd * -2.0),
                                     0.5 - lr * wd * 0.5};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(param.data<double>()[i], expected[i], 1e-9) << i;
  }
  EXPECT_NEAR(m.data<double>()[1], (1.0 - static_cast<double>(options.beta1)) * -4.0, 1e-12);
  EXPECT_NEAR(v.data<double>()[1], (1.0 - static_cast<double>(options.beta2)) * 16.0, 1e-12);
}

}  // namespace
}  // namespace longseq::test
