// Layer norm and RMS norm against the reference, forward (with the saved statistics) and
// backward; the reference against finite differences.
#include "kernels/norm.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/reference.h"
#include "tests/kernels/harness.h"

namespace longseq::test {
namespace {

enum class NormKind { layer, rms };

struct NormParameters {
  NormKind kind = NormKind::layer;
  std::int64_t rows = 67;
  std::int64_t columns = 129;
  // Added to every input: a large mean next to a small spread exposes one-pass variance formulas.
  double shift = 0.0;
  float eps = 1e-5f;
  std::uint64_t seed = 1;
};

class NormCase final : public KernelCase {
 public:
  explicit NormCase(NormParameters parameters) : p_(parameters) {}

  [[nodiscard]] std::string name() const override {
    return fmt::format("{}_norm_r{}_c{}{}", p_.kind == NormKind::layer ? "layer" : "rms", p_.rows,
                       p_.columns, p_.shift != 0.0 ? "_shifted" : "");
  }

  [[nodiscard]] std::vector<DType> dtypes(Device device) const override {
    if (device == Device::cpu) {
      return {DType::f32};
    }
    return {DType::f32, DType::bf16, DType::f16};
  }

  [[nodiscard]] double flops() const override {
    return 20.0 * static_cast<double>(p_.rows * p_.columns);
  }

  [[nodiscard]] Results run(ComputeContext& context, Device device, DType dtype) const override {
    const Inputs host = inputs(dtype);
    const Tensor x = on_device(host.x, device);
    const Tensor gamma = on_device(host.gamma, device);
    const Tensor grad_y = on_device(host.grad_y, device);
    const Tensor y = Tensor::empty(x.shape(), dtype, device);
    const Tensor rstd = Tensor::empty({p_.rows}, DType::f32, device);
    const Tensor grad_x = Tensor::empty(x.shape(), dtype, device);
    const Tensor grad_gamma = Tensor::empty(gamma.shape(), DType::f32, device);
    if (p_.kind == NormKind::layer) {
      const Tensor beta = on_device(host.beta, device);
      const Tensor mean = Tensor::empty({p_.rows}, DType::f32, device);
      const Tensor grad_beta = Tensor::empty(gamma.shape(), DType::f32, device);
      layer_norm_forward(context, x, gamma, beta, p_.eps, y, mean, rstd);
      layer_norm_backward(context, grad_y, x, gamma, mean, rstd, grad_x, grad_gamma, grad_beta);
      context.synchronize();
      return {{"y", to_host(y)},
              {"mean", to_host(mean)},
              {"rstd", to_host(rstd)},
              {"grad_x", to_host(grad_x)},
              {"grad_gamma", to_host(grad_gamma)},
              {"grad_beta", to_host(grad_beta)}};
    }
    rms_norm_forward(context, x, gamma, p_.eps, y, rstd);
    rms_norm_backward(context, grad_y, x, gamma, rstd, grad_x, grad_gamma);
    context.synchronize();
    return {{"y", to_host(y)},
            {"rstd", to_host(rstd)},
            {"grad_x", to_host(grad_x)},
            {"grad_gamma", to_host(grad_gamma)}};
  }

  [[nodiscard]] Results reference(DType dtype) const override {
    const Inputs in = inputs(dtype);
    const Tensor y = Tensor::empty(in.x.shape(), DType::f64);
    const Tensor grad_x = Tensor::empty(in.x.shape(), DType::f64);
    const Tensor grad_gamma = Tensor::empty(in.gamma.shape(), DType::f64);
    // The saved statistics, straight from their definitions.
    const std::vector<double> x = to_double_vector(in.x);
    std::vector<double> means(static_cast<std::size_t>(p_.rows));
    std::vector<double> rstds(static_cast<std::size_t>(p_.rows));
    for (std::int64_t r = 0; r < p_.rows; ++r) {
      double sum = 0.0;
      for (std::int64_t c = 0; c < p_.columns; ++c) {
        sum += x[r * p_.columns + c];
      }
      const double mean = p_.kind == NormKind::layer ? sum / static_cast<double>(p_.columns) : 0.0;
      double squares = 0.0;
      for (std::int64_t c = 0; c < p_.columns; ++c) {
        squares += (x[r * p_.columns + c] - mean) * (x[r * p_.columns + c] - mean);
      }
      means[r] = mean;
      rstds[r] =
          1.0 / std::sqrt(squares / static_cast<double>(p_.columns) + static_cast<double>(p_.eps));
    }
    if (p_.kind == NormKind::layer) {
      const Tensor grad_beta = Tensor::empty(in.gamma.shape(), DType::f64);
      reference::layer_norm_forward(in.x, in.gamma, in.beta, p_.eps, y);
      reference::layer_norm_backward(in.grad_y, in.x, in.gamma, p_.eps, grad_x, grad_gamma,
                                     grad_beta);
      return {{"y", y},
              {"mean", tensor_from(means, {p_.rows})},
              {"rstd", tensor_from(rstds, {p_.rows})},
              {"grad_x", grad_x},
              {"grad_gamma", grad_gamma},
              {"grad_beta", grad_beta}};
    }
    reference::rms_norm_forward(in.x, in.gamma, p_.eps, y);
    reference::rms_norm_backward(in.grad_y, in.x, in.gamma, p_.eps, grad_x, grad_gamma);
    return {{"y", y},
            {"rstd", tensor_from(rstds, {p_.rows})},
            {"grad_x", grad_x},
            {"grad_gamma", grad_gamma}};
  }

 private:
  struct Inputs {
    Tensor x;       // (R, C) in the case's dtype
    Tensor gamma;   // (C) fp32
    Tensor beta;    // (C) fp32
    Tensor grad_y;  // (R, C)
  };

  [[nodiscard]] Inputs inputs(DType dtype) const {
    const Shape shape{p_.rows, p_.columns};
    return {random_normal_tensor(shape, p_.seed, 1, dtype, 1.0, p_.shift),
            random_normal_tensor({p_.columns}, p_.seed, 2, DType::f32, 0.5, 1.0),
            random_normal_tensor({p_.columns}, p_.seed, 3, DType::f32, 0.1),
            random_normal_tensor(shape, p_.seed, 4, dtype)};
  }

  NormParameters p_;
};

std::vector<KernelCasePtr> norm_cases() {
  std::vector<NormParameters> list;
  for (const NormKind kind : {NormKind::layer, NormKind::rms}) {
    list.push_back({.kind = kind});
    list.push_back({.kind = kind, .rows = 16, .columns = 1024, .shift = 5.0});
    list.push_back({.kind = kind, .rows = 3, .columns = 4097});
    list.push_back({.kind = kind, .rows = 300, .columns = 7});
  }
  std::vector<KernelCasePtr> cases;
  std::uint64_t seed = 61;
  for (NormParameters& p : list) {
    p.seed = seed++;
    cases.push_back(std::make_shared<NormCase>(p));
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Norm, CpuBackend, testing::ValuesIn(cases_for(Device::cpu, norm_cases())),
                         case_name);
INSTANTIATE_TEST_SUITE_P(Norm, CudaBackend,
                         testing::ValuesIn(cases_for(Device::cuda, norm_cases())), case_name);

TEST(ReferenceNorm, LayerNormGradientsMatchFiniteDifferences) {
  const Tensor x = random_normal_tensor({3, 5}, 71, 1, DType::f64, 2.0, 1.0);
  const Tensor gamma = random_normal_tensor({5}, 71, 2, DType::f64, 0.5, 1.0);
  const Tensor beta = random_normal_tensor({5}, 71, 3, DType::f64);
  const Tensor weights = random_normal_tensor({3, 5}, 71, 4, DType::f64);
  const float eps = 1e-5f;
  const auto loss = [&] {
    const Tensor y = Tensor::empty({3, 5}, DType::f64);
    reference::layer_norm_forward(x, gamma, beta, eps, y);
    return weighted_sum(y, weights);
  };
  const Tensor grad_x = Tensor::empty({3, 5}, DType::f64);
  const Tensor grad_gamma = Tensor::empty({5}, DType::f64);
  const Tensor grad_beta = Tensor::empty({5}, DType::f64);
  reference::layer_norm_backward(weights, x, gamma, eps, grad_x, grad_gamma, grad_beta);
  expect_gradient_matches("grad_x", grad_x, finite_difference_gradient(x, loss), 1e-7);
  expect_gradient_matches("grad_gamma", grad_gamma, finite_difference_gradient(gamma, loss), 1e-7);
  expect_gradient_matches("grad_beta", grad_beta, finite_difference_gradient(beta, loss), 1e-7);
}

TEST(ReferenceNorm, RmsNormGradientsMatchFiniteDifferences) {
  const Tensor x = random_normal_tensor({3, 5}, 72, 1, DType::f64, 2.0, 1.0);
  const Tensor gamma = random_normal_tensor({5}, 72, 2, DType::f64, 0.5, 1.0);
  const Tensor weights = random_normal_tensor({3, 5}, 72, 4, DType::f64);
  const float eps = 1e-5f;
  const auto loss = [&] {
    const Tensor y = Tensor::empty({3, 5}, DType::f64);
    reference::rms_norm_forward(x, gamma, eps, y);
    return weighted_sum(y, weights);
  };
  const Tensor grad_x = Tensor::empty({3, 5}, DType::f64);
  const Tensor grad_gamma = Tensor::empty({5}, DType::f64);
  reference::rms_norm_backward(weights, x, gamma, eps, grad_x, grad_gamma);
  expect_gradient_matches("grad_x", grad_x, finite_difference_gradient(x, loss), 1e-7);
  expect_gradient_matches("grad_gamma", grad_gamma, finite_difference_gradient(gamma, loss), 1e-7);
}

}  // namespace
}  // namespace longseq::test
