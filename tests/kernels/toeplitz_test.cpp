// Toeplitz products (kernels/toeplitz.h): the FFT kernels against the direct double loops on every
// backend (forward, both gradients, accumulate mode; non-power-of-two sizes, n_out != n_in); a
// causal kernel against a causal convolution written out; partial backwards; and the reference's
// gradients against finite differences.
#include "kernels/toeplitz.h"

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <vector>

#include "tests/kernels/harness.h"

namespace longseq::test {
namespace {

struct ToeplitzParameters {
  std::int64_t batch = 2;
  std::int64_t groups = 3;
  std::int64_t n_out = 97;
  std::int64_t n_in = 97;
  std::int64_t columns = 5;
  bool accumulate = false;
  std::uint64_t seed = 11;
};

struct ToeplitzInputs {
  Tensor t;       // (G, n_out + n_in - 1)
  Tensor x;       // (B, G, n_in, F)
  Tensor grad_y;  // (B, G, n_out, F)
  // Initial contents of y, grad_x, grad_t in accumulate mode.
  Tensor y0, grad_x0, grad_t0;
};

ToeplitzInputs toeplitz_inputs(const ToeplitzParameters& p, DType dtype) {
  ToeplitzInputs in;
  in.t = random_normal_tensor({p.groups, p.n_out + p.n_in - 1}, p.seed, 1, dtype);
  in.x = random_normal_tensor({p.batch, p.groups, p.n_in, p.columns}, p.seed, 2, dtype);
  in.grad_y = random_normal_tensor({p.batch, p.groups, p.n_out, p.columns}, p.seed, 3, dtype);
  in.y0 = random_normal_tensor(in.grad_y.shape(), p.seed, 4, dtype);
  in.grad_x0 = random_normal_tensor(in.x.shape(), p.seed, 5, dtype);
  in.grad_t0 = random_normal_tensor(in.t.shape(), p.seed, 6, dtype);
  return in;
}

// A fresh output: a copy of `initial` when accumulating, else uninitialised.
Tensor output_like(const Tensor& initial, bool accumulate, Device device) {
  return accumulate ? on_device(initial, device)
                    : Tensor::empty(initial.shape(), initial.dtype(), device);
}

class ToeplitzCase final : public KernelCase {
 public:
  explicit ToeplitzCase(ToeplitzParameters parameters) : p_(parameters) {}

  [[nodiscard]] std::string name() const override {
    return fmt::format("toeplitz_b{}_g{}_out{}_in{}_f{}{}", p_.batch, p_.groups, p_.n_out, p_.n_in,
                       p_.columns, p_.accumulate ? "_accumulate" : "");
  }

  [[nodiscard]] std::vector<DType> dtypes(Device /*device*/) const override { return {DType::f32}; }

  // FFT round-off grows like log L relative to the largest entries: 1e-4 relative (MECHANISMS.md
  // test 4).
  [[nodiscard]] double tolerance(DType /*dtype*/) const override { return 1e-4; }

  [[nodiscard]] double flops() const override {
    return toeplitz_product_flops(p_.batch, p_.groups, p_.n_out, p_.n_in, p_.columns) +
           toeplitz_product_backward_flops(p_.batch, p_.groups, p_.n_out, p_.n_in, p_.columns);
  }

  [[nodiscard]] Results run(ComputeContext& context, Device device, DType dtype) const override {
    const ToeplitzInputs host = toeplitz_inputs(p_, dtype);
    const Tensor t = on_device(host.t, device);
    const Tensor x = on_device(host.x, device);
    const Tensor y = output_like(host.y0, p_.accumulate, device);
    toeplitz_product(context, t, x, y, p_.accumulate);
    const Tensor grad_x = output_like(host.grad_x0, p_.accumulate, device);
    const Tensor grad_t = output_like(host.grad_t0, p_.accumulate, device);
    toeplitz_product_backward(context, t, x, on_device(host.grad_y, device), grad_x, grad_t,
                              p_.accumulate);
    context.synchronize();
    return {{"y", to_host(y)}, {"grad_x", to_host(grad_x)}, {"grad_t", to_host(grad_t)}};
  }

  [[nodiscard]] Results reference(DType dtype) const override {
    const ToeplitzInputs in = toeplitz_inputs(p_, dtype);
    const Tensor y = p_.accumulate ? as_f64(in.y0) : Tensor::empty(in.y0.shape(), DType::f64);
    reference::toeplitz_product(as_f64(in.t), as_f64(in.x), y, p_.accumulate);
    const Tensor grad_x =
        p_.accumulate ? as_f64(in.grad_x0) : Tensor::empty(in.x.shape(), DType::f64);
    const Tensor grad_t =
        p_.accumulate ? as_f64(in.grad_t0) : Tensor::empty(in.t.shape(), DType::f64);
    reference::toeplitz_product_backward(as_f64(in.t), as_f64(in.x), as_f64(in.grad_y), grad_x,
                                         grad_t, p_.accumulate);
    return {{"y", y}, {"grad_x", grad_x}, {"grad_t", grad_t}};
  }

 private:
  ToeplitzParameters p_;
};

std::vector<KernelCasePtr> toeplitz_cases() {
  std::vector<KernelCasePtr> cases;
  const auto add = [&](ToeplitzParameters p) {
    cases.push_back(std::make_shared<ToeplitzCase>(p));
  };
  add({});
  add({.n_out = 113, .n_in = 203});
  add({.batch = 1, .groups = 2, .n_out = 250, .n_in = 7, .columns = 3});
  add({.batch = 1, .groups = 1, .n_out = 1, .n_in = 1, .columns = 1});
  add({.batch = 1, .groups = 4, .n_out = 1025, .n_in = 1023, .columns = 2});
  add({.batch = 3, .groups = 1, .n_out = 64, .n_in = 64, .columns = 1});
  add({.n_out = 61, .n_in = 29, .accumulate = true});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Toeplitz, CpuBackend,
                         testing::ValuesIn(cases_for(Device::cpu, toeplitz_cases())), case_name);
INSTANTIATE_TEST_SUITE_P(Toeplitz, CudaBackend,
                         testing::ValuesIn(cases_for(Device::cuda, toeplitz_cases())), case_name);

TEST(ToeplitzFftLength, SmallestEvenFiveSmooth) {
  EXPECT_EQ(toeplitz_fft_length(1), 2);
  EXPECT_EQ(toeplitz_fft_length(7), 8);
  EXPECT_EQ(toeplitz_fft_length(13), 16);
  EXPECT_EQ(toeplitz_fft_length(193), 200);
  EXPECT_EQ(toeplitz_fft_length(2047), 2048);
  EXPECT_EQ(toeplitz_fft_length(2049), 2160);
}

// A causal convolution y_l = sum_{j <= l} K_{l - j} u_j (how the state-space models use the
// operation) is the product with t_{-s} = K_s and t_s = 0 for s > 0.
TEST(ToeplitzCausal, EqualsCausalConvolution) {
  ComputeContext context(kTestThreads);
  const std::int64_t n = 151;
  const std::int64_t channels = 3;
  const Tensor kernel = random_normal_tensor({channels, n}, 21, 1, DType::f32);
  const Tensor u = random_normal_tensor({1, channels, n, 1}, 21, 2, DType::f32);
  const Tensor t = Tensor::zeros({channels, 2 * n - 1}, DType::f32);
  for (std::int64_t c = 0; c < channels; ++c) {
    for (std::int64_t s = 0; s < n; ++s) {
      t.data<float>()[c * (2 * n - 1) + n - 1 - s] = kernel.data<float>()[c * n + s];
    }
  }
  const Tensor y = Tensor::empty(u.shape(), DType::f32);
  toeplitz_product(context, t, u, y);
  std::vector<double> expected(static_cast<std::size_t>(channels * n), 0.0);
  for (std::int64_t c = 0; c < channels; ++c) {
    for (std::int64_t l = 0; l < n; ++l) {
      for (std::int64_t j = 0; j <= l; ++j) {
        expected[c * n + l] +=
            static_cast<double>(kernel.data<float>()[c * n + l - j]) * u.data<float>()[c * n + j];
      }
    }
  }
  expect_close("causal convolution", y, tensor_from(expected, u.shape()), 1e-5);
}

// Asking for one gradient gives the same values as asking for both.
TEST(ToeplitzBackward, PartialMatchesFull) {
  ComputeContext context(kTestThreads);
  const ToeplitzParameters p{.n_out = 40, .n_in = 71};
  const ToeplitzInputs in = toeplitz_inputs(p, DType::f32);
  const Tensor grad_x = Tensor::empty(in.x.shape(), DType::f32);
  const Tensor grad_t = Tensor::empty(in.t.shape(), DType::f32);
  toeplitz_product_backward(context, in.t, in.x, in.grad_y, grad_x, grad_t);
  const Tensor only_x = Tensor::empty(in.x.shape(), DType::f32);
  toeplitz_product_backward(context, in.t, in.x, in.grad_y, only_x, Tensor());
  const Tensor only_t = Tensor::empty(in.t.shape(), DType::f32);
  toeplitz_product_backward(context, in.t, in.x, in.grad_y, Tensor(), only_t);
  EXPECT_TRUE(bitwise_equal(only_x, grad_x));
  expect_close("grad_t alone", only_t, grad_t, 1e-6);
}

// The direct reference in fp64 against central differences of sum(y * grad_y).
TEST(ToeplitzReference, GradientsMatchFiniteDifferences) {
  const ToeplitzParameters p{.batch = 2, .groups = 2, .n_out = 5, .n_in = 7, .columns = 2};
  const ToeplitzInputs in = toeplitz_inputs(p, DType::f64);
  const auto loss = [&] {
    const Tensor y = Tensor::empty(in.grad_y.shape(), DType::f64);
    reference::toeplitz_product(in.t, in.x, y);
    return weighted_sum(y, in.grad_y);
  };
  const Tensor grad_x = Tensor::empty(in.x.shape(), DType::f64);
  const Tensor grad_t = Tensor::empty(in.t.shape(), DType::f64);
  reference::toeplitz_product_backward(in.t, in.x, in.grad_y, grad_x, grad_t);
  expect_gradient_matches("grad_x", grad_x, finite_difference_gradient(in.x, loss), 1e-8);
  expect_gradient_matches("grad_t", grad_t, finite_difference_gradient(in.t, loss), 1e-8);
}

}  // namespace
}  // namespace longseq::test
