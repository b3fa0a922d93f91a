// S4 (kernels/s4.h): the HiPPO-LegS normal-plus-low-rank identity; the Cauchy kernel against
// matrix powers of the dense discretised system; the convolution mode against the unrolled
// recurrence; any split with state handoff against one pass; causality of the FFT convolution;
// the transition Abar^L; and the backward (kernel and pieces) against finite differences of the
// double reference.
#include "kernels/s4.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/reference/s4.h"
#include "tests/kernels/harness.h"

namespace longseq::test {
namespace {

constexpr double kTolerance = 1e-4;

S4Parameters parameters_f64(const S4Parameters& p) {
  return {p.log_dt.to(DType::f64), p.lambda.to(DType::f64), p.p.to(DType::f64),
          p.b.to(DType::f64),      p.c.to(DType::f64),      p.d.to(DType::f64)};
}

TEST(S4Hippo, NormalPlusLowRankIsSkewUpToMinusHalf) {
  const std::int64_t n = 16;
  const HippoLegs hippo = hippo_legs(n);
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j < n; ++j) {
      const double sij = hippo.a[i * n + j] + hippo.p[i] * hippo.p[j] + (i == j ? 0.5 : 0.0);
      const double sji = hippo.a[j * n + i] + hippo.p[j] * hippo.p[i] + (i == j ? 0.5 : 0.0);
      EXPECT_NEAR(sij, -sji, 1e-12) << i << ", " << j;
    }
  }
}

TEST(S4Init, DiagonalisedModesAreStableAndSeeded) {
  const S4Parameters a = make_s4_parameters(3, 16, 7);
  const S4Parameters b = make_s4_parameters(3, 16, 7);
  const S4Parameters c = make_s4_parameters(3, 16, 8);
  ASSERT_EQ(a.lambda.shape(), (Shape{3, 8, 2}));
  for (std::int64_t i = 0; i < a.lambda.numel(); i += 2) {
    EXPECT_NEAR(a.lambda.data<float>()[i], -0.5f, 1e-5f);
    EXPECT_GT(a.lambda.data<float>()[i + 1], 0.0f);
  }
  for (std::int64_t h = 0; h < 3; ++h) {
    const float dt = std::exp(a.log_dt.data<float>()[h]);
    EXPECT_GE(dt, 1e-3f * 0.999f);
    EXPECT_LE(dt, 1e-1f * 1.001f);
  }
  for (std::size_t i = 0; i < a.list().size(); ++i) {
    EXPECT_TRUE(bitwise_equal(a.list()[i], b.list()[i]));
  }
  EXPECT_FALSE(bitwise_equal(a.c, c.c));
  // The rank-1 term reconstructs HiPPO: sum over all modes of |p|^2 = |P|^2 = N^2 / 2.
  double norm = 0.0;
  for (std::int64_t m = 0; m < 8; ++m) {
    norm +=
        2.0 * (std::pow(a.p.data<float>()[2 * m], 2) + std::pow(a.p.data<float>()[2 * m + 1], 2));
  }
  EXPECT_NEAR(norm, 16.0 * 16.0 / 2.0, 1e-3);
}

class S4KernelTest : public testing::TestWithParam<std::int64_t> {};

TEST_P(S4KernelTest, CauchyKernelEqualsMatrixPowers) {
  ComputeContext context(kTestThreads);
  const std::int64_t length = GetParam();
  for (const std::int64_t state : {8, 64}) {
    const S4Parameters parameters = make_s4_parameters(4, state, 11);
    const Tensor kernel = Tensor::empty({4, length}, DType::f32);
    s4_kernel(context, parameters, kernel);
    expect_close("kernel", kernel, reference::s4_kernel(parameters, length), kTolerance);
  }
}

TEST_P(S4KernelTest, ConvolutionEqualsRecurrence) {
  ComputeContext context(kTestThreads);
  const std::int64_t length = GetParam();
  const S4Parameters parameters = make_s4_parameters(3, 16, 12);
  const Tensor u = random_normal_tensor({2, 3, length}, 5, 1);
  const Tensor y = Tensor::empty(u.shape(), DType::f32);
  const Tensor final = Tensor::empty({2, 3, 8, 2}, DType::f32);
  s4_forward(context, parameters, u, Tensor(), y, final);
  const reference::S4Result expected = reference::s4_recurrence(parameters, u, Tensor());
  expect_close("convolution", y, expected.y, kTolerance);
  expect_close("final", final, expected.final, kTolerance);
  const Tensor state = Tensor::zeros({2, 3, 8, 2}, DType::f32);
  const Tensor stepped = Tensor::empty(u.shape(), DType::f32);
  s4_recurrence(context, parameters, u, state, stepped);
  expect_close("recurrence", stepped, expected.y, kTolerance);
  expect_close("recurrence state", state, expected.final, kTolerance);
}

INSTANTIATE_TEST_SUITE_P(Lengths, S4KernelTest, testing::Values(1, 2, 61, 64, 257));

TEST(S4Split, HandoffAnywhereEqualsOnePass) {
  ComputeContext context(kTestThreads);
  const std::int64_t length = 50;
  const S4Parameters parameters = make_s4_parameters(2, 8, 13);
  const Tensor u = random_normal_tensor({2, 2, length}, 6, 1);
  const reference::S4Result whole = reference::s4_recurrence(parameters, u, Tensor());
  for (const std::int64_t split : {1, 17, 49}) {
    const Tensor first_u = u.slice(2, 0, split).contiguous();
    const Tensor second_u = u.slice(2, split, length).contiguous();
    const Tensor first_y = Tensor::empty(first_u.shape(), DType::f32);
    const Tensor second_y = Tensor::empty(second_u.shape(), DType::f32);
    const Tensor middle = Tensor::empty({2, 2, 4, 2}, DType::f32);
    const Tensor final = Tensor::empty({2, 2, 4, 2}, DType::f32);
    s4_forward(context, parameters, first_u, Tensor(), first_y, middle);
    s4_forward(context, parameters, second_u, middle, second_y, final);
    expect_close("first", first_y, whole.y.slice(2, 0, split).contiguous(), kTolerance);
    expect_close("second", second_y, whole.y.slice(2, split, length).contiguous(), kTolerance);
    expect_close("final", final, whole.final, kTolerance);
    // Abar^L x_in + x_local = x_out.
    const Tensor moved = middle.clone();
    s4_transition(context, parameters, length - split, false, moved);
    const Tensor local = Tensor::empty(final.shape(), DType::f32);
    const Tensor scratch = Tensor::empty(second_u.shape(), DType::f32);
    s4_forward(context, parameters, second_u, Tensor(), scratch, local);
    for (std::int64_t i = 0; i < moved.numel(); ++i) {
      moved.data<float>()[i] += local.data<float>()[i];
    }
    expect_close("affine", moved, whole.final, kTolerance);
  }
}

TEST(S4Causality, PerturbingLaterInputsLeavesEarlierOutputs) {
  ComputeContext context(kTestThreads);
  const std::int64_t length = 64;
  const S4Parameters parameters = make_s4_parameters(2, 16, 14);
  const Tensor u = random_normal_tensor({1, 2, length}, 7, 1);
  const Tensor y = Tensor::empty(u.shape(), DType::f32);
  s4_forward(context, parameters, u, Tensor(), y, Tensor());
  const std::int64_t t = 40;
  const Tensor perturbed = u.clone();
  perturbed.data<float>()[t] += 100.0f;
  perturbed.data<float>()[length + t] -= 100.0f;
  const Tensor z = Tensor::empty(u.shape(), DType::f32);
  s4_forward(context, parameters, perturbed, Tensor(), z, Tensor());
  double scale = 0.0;
  for (std::int64_t i = 0; i < y.numel(); ++i) {
    scale = std::max(scale, std::abs(static_cast<double>(y.data<float>()[i])));
  }
  for (std::int64_t row = 0; row < 2; ++row) {
    for (std::int64_t l = 0; l < t; ++l) {
      EXPECT_LE(std::abs(z.data<float>()[row * length + l] - y.data<float>()[row * length + l]),
                1e-5 * scale)
          << row << ", " << l;
    }
    EXPECT_GT(std::abs(z.data<float>()[row * length + t] - y.data<float>()[row * length + t]), 1.0);
  }
}

// loss = sum(y * w) + sum(final * v) by the double reference.
double reference_loss(const S4Parameters& parameters, const Tensor& u, const Tensor& initial,
                      const Tensor& w, const Tensor& v) {
  const reference::S4Result result = reference::s4_recurrence(parameters, u, initial);
  return weighted_sum(result.y, as_f64(w)) + weighted_sum(result.final, as_f64(v));
}

TEST(S4Gradient, PieceBackwardMatchesFiniteDifferences) {
  ComputeContext context(kTestThreads);
  const std::int64_t length = 23;
  const S4Parameters parameters = parameters_f64(make_s4_parameters(2, 6, 15));
  const Tensor u = random_normal_tensor({2, 2, length}, 8, 1);
  const Tensor initial = random_normal_tensor({2, 2, 3, 2}, 8, 2);
  const Tensor w = random_normal_tensor(u.shape(), 8, 3);
  const Tensor v = random_normal_tensor(initial.shape(), 8, 4);
  const Tensor grad_u = Tensor::empty(u.shape(), DType::f32);
  const Tensor grad_initial = Tensor::empty(initial.shape(), DType::f32);
  const S4Parameters grads = zeros_like(parameters);
  s4_backward(context, parameters, u, initial, w, v, grad_u, grad_initial, grads);
  const Tensor u64 = as_f64(u);
  const Tensor initial64 = as_f64(initial);
  const auto loss = [&] { return reference_loss(parameters, u64, initial64, w, v); };
  const std::vector<std::string> names{"log_dt", "lambda", "p", "b", "c", "d"};
  for (std::size_t i = 0; i < names.size(); ++i) {
    expect_gradient_matches(names[i], grads.list()[i],
                            finite_difference_gradient(parameters.list()[i], loss, 1e-6), 1e-5);
  }
  expect_gradient_matches("u", grad_u, finite_difference_gradient(u64, loss, 1e-6), 1e-5);
  expect_gradient_matches("initial", grad_initial,
                          finite_difference_gradient(initial64, loss, 1e-6), 1e-5);
}

TEST(S4Gradient, KernelBackwardMatchesFiniteDifferences) {
  ComputeContext context(kTestThreads);
  const std::int64_t length = 19;
  const S4Parameters parameters = parameters_f64(make_s4_parameters(2, 8, 16));
  const Tensor w = random_normal_tensor({2, length}, 9, 1);
  const S4Parameters grads = zeros_like(parameters);
  s4_kernel_backward(context, parameters, w, grads);
  const auto loss = [&] {
    return weighted_sum(reference::s4_kernel(parameters, length), as_f64(w));
  };
  const std::vector<std::string> names{"log_dt", "lambda", "p", "b", "c"};
  for (std::size_t i = 0; i < names.size(); ++i) {
    expect_gradient_matches(names[i], grads.list()[i],
                            finite_difference_gradient(parameters.list()[i], loss, 1e-6), 1e-5);
  }
}

}  // namespace
}  // namespace longseq::test
