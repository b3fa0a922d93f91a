// rpe attention (kernels/rpe_attention.h): the FFT path against the direct O(N^2) reference on
// every backend (forward, grads of q, k, v and b; causal and not; non-power-of-two N); b = 0
// against plain kernelized (linear) attention; any split into query and key blocks against one
// call; positive denominators; and the reference's gradients against finite differences.
#include "kernels/rpe_attention.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "kernels/linear_attention.h"
#include "tests/kernels/harness.h"

namespace longseq::test {
namespace {

struct RpeParameters {
  std::int64_t batch = 2;
  std::int64_t heads = 2;
  std::int64_t length = 97;
  std::int64_t key_dim = 8;
  std::int64_t value_dim = 6;
  bool causal = true;
  double b_scale = 0.5;  // b ~ N(0, b_scale^2)
  // The FFT is accurate relative to the largest weight; where the weights a row sees are much
  // smaller, its readout gradient (a difference of two terms, g / den and (g . out) / den) loses
  // more: widely spread b needs a wider tolerance for the gradients.
  double tolerance = 1e-4;
  std::uint64_t seed = 17;
};

struct RpeInputs {
  Tensor q, k, v, b, grad_out;
};

RpeInputs rpe_inputs(const RpeParameters& p, DType dtype) {
  const Shape key_shape{p.batch, p.heads, p.length, p.key_dim};
  const Shape value_shape{p.batch, p.heads, p.length, p.value_dim};
  return {random_normal_tensor(key_shape, p.seed, 1, dtype),
          random_normal_tensor(key_shape, p.seed, 2, dtype),
          random_normal_tensor(value_shape, p.seed, 3, dtype),
          random_normal_tensor({p.heads, 2 * p.length - 1}, p.seed, 4, dtype, p.b_scale),
          random_normal_tensor(value_shape, p.seed, 5, dtype)};
}

RpeAttentionOptions options_of(bool causal) {
  RpeAttentionOptions options;
  options.causal = causal;
  return options;
}

class RpeAttentionCase final : public KernelCase {
 public:
  explicit RpeAttentionCase(RpeParameters parameters) : p_(parameters) {}

  [[nodiscard]] std::string name() const override {
    return fmt::format("rpe_b{}_h{}_n{}_dk{}_dv{}_{}", p_.batch, p_.heads, p_.length, p_.key_dim,
                       p_.value_dim, p_.causal ? "causal" : "full");
  }

  // Causal on CUDA is refused until the exact causal split has CUDA kernels
  // (kernels/rpe_attention.h).
  [[nodiscard]] std::vector<DType> dtypes(Device device) const override {
    if (p_.causal && device == Device::cuda) {
      return {};
    }
    return {DType::f32};
  }

  // The FFT products in fp32: 1e-4 relative (MECHANISMS.md test 4) for moderate b.
  [[nodiscard]] double tolerance(DType /*dtype*/) const override { return p_.tolerance; }

  [[nodiscard]] double flops() const override {
    return rpe_attention_block_forward_flops(p_.batch, p_.heads, p_.length, p_.length, p_.key_dim,
                                             p_.value_dim) +
           rpe_attention_block_backward_flops(p_.batch, p_.heads, p_.length, p_.length, p_.key_dim,
                                              p_.value_dim);
  }

  [[nodiscard]] Results run(ComputeContext& context, Device device, DType dtype) const override {
    const RpeInputs host = rpe_inputs(p_, dtype);
    const Tensor q = on_device(host.q, device);
    const Tensor k = on_device(host.k, device);
    const Tensor v = on_device(host.v, device);
    const Tensor b = on_device(host.b, device);
    const RpeAttentionOptions options = options_of(p_.causal);
    const Tensor out = Tensor::empty(v.shape(), dtype, device);
    rpe_attention_forward(context, q, k, v, b, options, out);
    const Tensor grad_q = Tensor::empty(q.shape(), dtype, device);
    const Tensor grad_k = Tensor::empty(k.shape(), dtype, device);
    const Tensor grad_v = Tensor::empty(v.shape(), dtype, device);
    const Tensor grad_b = Tensor::empty(b.shape(), dtype, device);
    rpe_attention_backward(context, q, k, v, b, on_device(host.grad_out, device), options, grad_q,
                           grad_k, grad_v, grad_b);
    context.synchronize();
    return {{"out", to_host(out)},
            {"grad_q", to_host(grad_q)},
            {"grad_k", to_host(grad_k)},
            {"grad_v", to_host(grad_v)},
            {"grad_b", to_host(grad_b)}};
  }

  [[nodiscard]] Results reference(DType dtype) const override {
    const RpeInputs in = rpe_inputs(p_, dtype);
    const RpeAttentionOptions options = options_of(p_.causal);
    const Tensor out = Tensor::empty(in.v.shape(), DType::f64);
    reference::rpe_attention_forward(as_f64(in.q), as_f64(in.k), as_f64(in.v), as_f64(in.b),
                                     options, out, Tensor());
    const Tensor grad_q = Tensor::empty(in.q.shape(), DType::f64);
    const Tensor grad_k = Tensor::empty(in.k.shape(), DType::f64);
    const Tensor grad_v = Tensor::empty(in.v.shape(), DType::f64);
    const Tensor grad_b = Tensor::empty(in.b.shape(), DType::f64);
    reference::rpe_attention_backward(as_f64(in.q), as_f64(in.k), as_f64(in.v), as_f64(in.b),
                                      as_f64(in.grad_out), options, grad_q, grad_k, grad_v, grad_b);
    return {{"out", out},
            {"grad_q", grad_q},
            {"grad_k", grad_k},
            {"grad_v", grad_v},
            {"grad_b", grad_b}};
  }

 private:
  RpeParameters p_;
};

std::vector<KernelCasePtr> rpe_attention_cases() {
  std::vector<KernelCasePtr> cases;
  for (const bool causal : {true, false}) {
    const auto add = [&](RpeParameters p) {
      p.causal = causal;
      cases.push_back(std::make_shared<RpeAttentionCase>(p));
    };
    add({});
    add({.batch = 1, .heads = 3, .length = 113, .key_dim = 5, .value_dim = 9});
    add({.batch = 1,
         .heads = 1,
         .length = 200,
         .key_dim = 16,
         .value_dim = 3,
         .b_scale = 2.0,
         .tolerance = 1e-3});
    add({.batch = 1, .heads = 2, .length = 2, .key_dim = 3, .value_dim = 2});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(RpeAttention, CpuBackend,
                         testing::ValuesIn(cases_for(Device::cpu, rpe_attention_cases())),
                         case_name);
INSTANTIATE_TEST_SUITE_P(RpeAttention, CudaBackend,
                         testing::ValuesIn(cases_for(Device::cuda, rpe_attention_cases())),
                         case_name);

// With b = 0 every weight is 1: plain kernelized attention (kernels/linear_attention.h), forward
// and backward (its eps is added, ours clamps: both negligible next to these denominators).
TEST(RpeAttention, ZeroBiasEqualsLinearAttention) {
  ComputeContext context(kTestThreads);
  for (const bool causal : {true, false}) {
    const RpeParameters p{.length = 131, .key_dim = 12, .value_dim = 7, .causal = causal};
    const RpeInputs in = rpe_inputs(p, DType::f32);
    const Tensor b = Tensor::zeros(in.b.shape(), DType::f32);
    const Tensor out = Tensor::empty(in.v.shape(), DType::f32);
    rpe_attention_forward(context, in.q, in.k, in.v, b, options_of(causal), out);
    LinearAttentionOptions linear;
    linear.causal = causal;
    const Tensor linear_out = Tensor::empty(in.v.shape(), DType::f32);
    linear_attention_forward(context, in.q, in.k, in.v, linear, {}, linear_out, {});
    expect_close("out", out, linear_out, 1e-4);
    const Tensor grad_q = Tensor::empty(in.q.shape(), DType::f32);
    const Tensor grad_k = Tensor::empty(in.k.shape(), DType::f32);
    const Tensor grad_v = Tensor::empty(in.v.shape(), DType::f32);
    rpe_attention_backward(context, in.q, in.k, in.v, b, in.grad_out, options_of(causal), grad_q,
                           grad_k, grad_v, Tensor());
    const Tensor linear_q = Tensor::empty(in.q.shape(), DType::f32);
    const Tensor linear_k = Tensor::empty(in.k.shape(), DType::f32);
    const Tensor linear_v = Tensor::empty(in.v.shape(), DType::f32);
    linear_attention_backward(context, in.q, in.k, in.v, in.grad_out, linear, {}, {}, linear_q,
                              linear_k, linear_v, {});
    expect_close("grad_q", grad_q, linear_q, 1e-4);
    expect_close("grad_k", grad_k, linear_k, 1e-4);
    expect_close("grad_v", grad_v, linear_v, 1e-4);
  }
}

// Positions [begin, end) of a (B, H, N, D) CPU tensor, contiguous.
Tensor positions(const Tensor& full, std::int64_t begin, std::int64_t end) {
  return full.slice(2, begin, end).contiguous();
}

// Adds `part` into positions [begin, begin + part length) of `full`.
void add_positions(const Tensor& part, const Tensor& full, std::int64_t begin) {
  const Tensor target = full.slice(2, begin, begin + part.size(2));
  const Tensor sum = target.contiguous().clone();
  const std::int64_t n = sum.numel();
  for (std::int64_t e = 0; e < n; ++e) {
    sum.data<float>()[e] += part.data<float>()[e];
  }
  target.copy_from(sum);
}

// The block functions over every (query piece, key piece) pair, with the weights of each pair's
// offsets, add up to one call: forward, and backward including grad_b.
TEST(RpeAttention, BlockPairsEqualOneCall) {
  ComputeContext context(kTestThreads);
  for (const bool causal : {true, false}) {
    const RpeParameters p{.batch = 1, .length = 90, .key_dim = 5, .value_dim = 4, .causal = causal};
    const RpeInputs in = rpe_inputs(p, DType::f32);
    const RpeAttentionOptions options = options_of(causal);
    const Tensor out = Tensor::empty(in.v.shape(), DType::f32);
    rpe_attention_forward(context, in.q, in.k, in.v, in.b, options, out);
    const Tensor grad_q = Tensor::empty(in.q.shape(), DType::f32);
    const Tensor grad_k = Tensor::empty(in.k.shape(), DType::f32);
    const Tensor grad_v = Tensor::empty(in.v.shape(), DType::f32);
    const Tensor grad_b = Tensor::empty(in.b.shape(), DType::f32);
    rpe_attention_backward(context, in.q, in.k, in.v, in.b, in.grad_out, options, grad_q, grad_k,
                           grad_v, grad_b);
    const std::vector<std::int64_t> cuts{0, 17, 60, 61, 90};
    const std::size_t pieces = cuts.size() - 1;
    const Shape numerator_shape{p.batch, p.heads, p.length, p.value_dim + 1};
    const Tensor numerator = Tensor::zeros(numerator_shape, DType::f32);
    const auto weights_of = [&](std::size_t qi, std::size_t ki) {
      const std::int64_t nq = cuts[qi + 1] - cuts[qi];
      const std::int64_t nk = cuts[ki + 1] - cuts[ki];
      const std::int64_t first = rpe_block_first_entry(p.length, cuts[qi], nq, cuts[ki]);
      const Tensor weights = Tensor::empty({p.heads, nq + nk - 1}, DType::f32);
      rpe_position_weights(context, in.b, causal, first, weights);
      return std::make_pair(weights, first);
    };
    for (std::size_t qi = 0; qi < pieces; ++qi) {
      const Tensor part =
          Tensor::zeros(positions(numerator, cuts[qi], cuts[qi + 1]).shape(), DType::f32);
      for (std::size_t ki = 0; ki < pieces; ++ki) {
        rpe_attention_block_forward(context, positions(in.q, cuts[qi], cuts[qi + 1]),
                                    positions(in.k, cuts[ki], cuts[ki + 1]),
                                    positions(in.v, cuts[ki], cuts[ki + 1]),
                                    weights_of(qi, ki).first, part);
      }
      add_positions(part, numerator, cuts[qi]);
    }
    const Tensor split_out = Tensor::empty(in.v.shape(), DType::f32);
    rpe_attention_readout(context, numerator, options.eps, split_out);
    expect_close("out", split_out, out, 1e-5);
    const Tensor readout_grad = Tensor::empty(numerator_shape, DType::f32);
    rpe_attention_readout_backward(context, numerator, in.grad_out, options.eps, readout_grad);
    const Tensor split_q = Tensor::zeros(in.q.shape(), DType::f32);
    const Tensor split_k = Tensor::zeros(in.k.shape(), DType::f32);
    const Tensor split_v = Tensor::zeros(in.v.shape(), DType::f32);
    const Tensor split_b = Tensor::zeros(in.b.shape(), DType::f32);
    for (std::size_t qi = 0; qi < pieces; ++qi) {
      for (std::size_t ki = 0; ki < pieces; ++ki) {
        const auto [weights, first] = weights_of(qi, ki);
        const Tensor gq =
            Tensor::zeros(positions(in.q, cuts[qi], cuts[qi + 1]).shape(), DType::f32);
        const Tensor gk =
            Tensor::zeros(positions(in.k, cuts[ki], cuts[ki + 1]).shape(), DType::f32);
        const Tensor gv =
            Tensor::zeros(positions(in.v, cuts[ki], cuts[ki + 1]).shape(), DType::f32);
        const Tensor gw = Tensor::zeros(weights.shape(), DType::f32);
        rpe_attention_block_backward(
            context, positions(in.q, cuts[qi], cuts[qi + 1]),
            positions(in.k, cuts[ki], cuts[ki + 1]), positions(in.v, cuts[ki], cuts[ki + 1]),
            weights, positions(readout_grad, cuts[qi], cuts[qi + 1]), gq, gk, gv, gw);
        add_positions(gq, split_q, cuts[qi]);
        add_positions(gk, split_k, cuts[ki]);
        add_positions(gv, split_v, cuts[ki]);
        rpe_position_weights_backward(context, weights, gw, first, split_b);
      }
    }
    // Other FFT lengths, other round-off: the readout gradient amplifies it a little.
    expect_close("grad_q", split_q, grad_q, 5e-5);
    expect_close("grad_k", split_k, grad_k, 5e-5);
    expect_close("grad_v", split_v, grad_v, 5e-5);
    expect_close("grad_b", split_b, grad_b, 5e-5);
  }
}

// Rows [begin, end) of a (B, H, N, D) tensor replaced by fresh normals (a new stream).
Tensor with_new_rows(const Tensor& full, std::int64_t begin, std::int64_t end,
                     std::uint64_t stream) {
  const Tensor result = full.clone();
  const Tensor fresh = random_normal_tensor(full.shape(), 99, stream);
  result.slice(2, begin, end).copy_from(fresh.slice(2, begin, end));
  return result;
}

// Causal: new q, k, v after position `cut` leave the outputs before it, and (with dL/d out = 0
// after it) every gradient, bit for bit; the gradients of the inputs after it are exactly 0. The
// length spans several levels of the causal split, and the cut lies inside a leaf.
TEST(RpeAttention, CausalFutureInputsLeavePastBitIdentical) {
  ComputeContext context(kTestThreads);
  const RpeParameters p{.length = 300, .key_dim = 5, .value_dim = 4};
  const std::int64_t cut = 137;
  const RpeInputs in = rpe_inputs(p, DType::f32);
  const Tensor grad_out = with_new_rows(in.grad_out, cut, p.length, 6);
  grad_out.slice(2, cut, p.length)
      .copy_from(Tensor::zeros({p.batch, p.heads, p.length - cut, p.value_dim}, DType::f32));
  const auto run = [&](const Tensor& q, const Tensor& k, const Tensor& v) {
    std::vector<Tensor> results{
        Tensor::empty(v.shape(), DType::f32), Tensor::empty(q.shape(), DType::f32),
        Tensor::empty(k.shape(), DType::f32), Tensor::empty(v.shape(), DType::f32),
        Tensor::empty(in.b.shape(), DType::f32)};
    rpe_attention_forward(context, q, k, v, in.b, options_of(true), results[0]);
    rpe_attention_backward(context, q, k, v, in.b, grad_out, options_of(true), results[1],
                           results[2], results[3], results[4]);
    return results;
  };
  const std::vector<Tensor> before = run(in.q, in.k, in.v);
  const std::vector<Tensor> after =
      run(with_new_rows(in.q, cut, p.length, 7), with_new_rows(in.k, cut, p.length, 8),
          with_new_rows(in.v, cut, p.length, 9));
  const std::vector<std::string> names{"out", "grad_q", "grad_k", "grad_v"};
  for (std::size_t r = 0; r < names.size(); ++r) {
    EXPECT_TRUE(bitwise_equal(before[r].slice(2, 0, cut).contiguous(),
                              after[r].slice(2, 0, cut).contiguous()))
        << names[r] << " before position " << cut;
    if (r > 0) {
      const Tensor future = after[r].slice(2, cut, p.length).contiguous();
      EXPECT_TRUE(bitwise_equal(future, Tensor::zeros(future.shape(), DType::f32)))
          << names[r] << " after position " << cut;
    }
  }
  EXPECT_TRUE(bitwise_equal(before[4], after[4])) << "grad_b";
}

// Causal at N = 1025 (the split's levels plus a ragged end): 1e-5 relative against the fp64
// reference, for the output and every gradient, since no row carries the round-off of keys it
// does not see.
TEST(RpeAttention, CausalLongSequenceWithinFp32Tolerance) {
  ComputeContext context(kTestThreads);
  const RpeAttentionCase test_case(
      {.batch = 1, .heads = 2, .length = 1025, .key_dim = 8, .value_dim = 6, .causal = true});
  const Results actual = test_case.run(context, Device::cpu, DType::f32);
  const Results expected = test_case.reference(DType::f32);
  ASSERT_EQ(actual.size(), expected.size());
  for (std::size_t r = 0; r < expected.size(); ++r) {
    expect_close(expected[r].name, actual[r].tensor, expected[r].tensor, 1e-5);
  }
}

// Every denominator is positive (the features are, and so are the weights), in the reference and
// in the FFT path.
TEST(RpeAttention, DenominatorPositive) {
  ComputeContext context(kTestThreads);
  for (const bool causal : {true, false}) {
    const RpeParameters p{.length = 150, .causal = causal, .b_scale = 1.0};
    const RpeInputs in = rpe_inputs(p, DType::f32);
    const Tensor weights = Tensor::empty({p.heads, 2 * p.length - 1}, DType::f32);
    rpe_position_weights(context, in.b, causal, 0, weights);
    const Tensor numerator =
        Tensor::zeros({p.batch, p.heads, p.length, p.value_dim + 1}, DType::f32);
    rpe_attention_block_forward(context, in.q, in.k, in.v, weights, numerator);
    const Tensor den = Tensor::empty({p.batch, p.heads, p.length}, DType::f64);
    const Tensor out = Tensor::empty(in.v.shape(), DType::f64);
    reference::rpe_attention_forward(as_f64(in.q), as_f64(in.k), as_f64(in.v), as_f64(in.b),
                                     options_of(causal), out, den);
    for (std::int64_t e = 0; e < den.numel(); ++e) {
      ASSERT_GT(den.data<double>()[e], 0.0) << "reference at " << e;
      ASSERT_GT(numerator.data<float>()[e * (p.value_dim + 1) + p.value_dim], 0.0f)
          << "fft at " << e;
    }
  }
}

// Weights spanning many orders of magnitude (b ~ N(0, 64)): the fp32 FFT is accurate relative to
// the largest weight only, so rows that see only tiny weights lose accuracy, but the clamped
// denominator keeps every output and gradient finite.
TEST(RpeAttention, ExtremeWeightsStayFinite) {
  ComputeContext context(kTestThreads);
  for (const bool causal : {true, false}) {
    const RpeParameters p{.length = 150, .causal = causal, .b_scale = 8.0};
    const RpeInputs in = rpe_inputs(p, DType::f32);
    const Tensor out = Tensor::empty(in.v.shape(), DType::f32);
    rpe_attention_forward(context, in.q, in.k, in.v, in.b, options_of(causal), out);
    const Tensor grad_b = Tensor::empty(in.b.shape(), DType::f32);
    const Tensor grad_q = Tensor::empty(in.q.shape(), DType::f32);
    rpe_attention_backward(context, in.q, in.k, in.v, in.b, in.grad_out, options_of(causal), grad_q,
                           Tensor(), Tensor(), grad_b);
    for (const Tensor* tensor : {&out, &grad_q, &grad_b}) {
      for (std::int64_t e = 0; e < tensor->numel(); ++e) {
        ASSERT_TRUE(std::isfinite(tensor->data<float>()[e])) << "element " << e;
      }
    }
  }
}

// The reference in fp64 against central differences of sum(out * grad_out), b included.
TEST(RpeAttentionReference, GradientsMatchFiniteDifferences) {
  for (const bool causal : {true, false}) {
    const RpeParameters p{.batch = 1,
                          .heads = 2,
                          .length = 6,
                          .key_dim = 3,
                          .value_dim = 2,
                          .causal = causal,
                          .b_scale = 1.0};
    const RpeInputs in = rpe_inputs(p, DType::f64);
    const RpeAttentionOptions options = options_of(causal);
    const auto loss = [&] {
      const Tensor out = Tensor::empty(in.v.shape(), DType::f64);
      reference::rpe_attention_forward(in.q, in.k, in.v, in.b, options, out, Tensor());
      return weighted_sum(out, in.grad_out);
    };
    const Tensor grad_q = Tensor::empty(in.q.shape(), DType::f64);
    const Tensor grad_k = Tensor::empty(in.k.shape(), DType::f64);
    const Tensor grad_v = Tensor::empty(in.v.shape(), DType::f64);
    const Tensor grad_b = Tensor::empty(in.b.shape(), DType::f64);
    reference::rpe_attention_backward(in.q, in.k, in.v, in.b, in.grad_out, options, grad_q, grad_k,
                                      grad_v, grad_b);
    expect_gradient_matches("grad_q", grad_q, finite_difference_gradient(in.q, loss), 1e-7);
    expect_gradient_matches("grad_k", grad_k, finite_difference_gradient(in.k, loss), 1e-7);
    expect_gradient_matches("grad_v", grad_v, finite_difference_gradient(in.v, loss), 1e-7);
    expect_gradient_matches("grad_b", grad_b, finite_difference_gradient(in.b, loss), 1e-7);
  }
}

// The FFT path's gradient w.r.t. b against central differences of its own (fp32) loss, in
// directions of whole rows of b: the fp32 loss is too coarse for single entries.
TEST(RpeAttention, BiasGradientMatchesFiniteDifferences) {
  ComputeContext context(kTestThreads);
  for (const bool causal : {true, false}) {
    const RpeParameters p{
        .batch = 1, .heads = 2, .length = 40, .key_dim = 4, .value_dim = 3, .causal = causal};
    const RpeInputs in = rpe_inputs(p, DType::f32);
    const RpeAttentionOptions options = options_of(causal);
    const Tensor grad_b = Tensor::empty(in.b.shape(), DType::f32);
    rpe_attention_backward(context, in.q, in.k, in.v, in.b, in.grad_out, options, Tensor(),
                           Tensor(), Tensor(), grad_b);
    const Tensor direction = random_normal_tensor(in.b.shape(), 3, 9, DType::f32);
    const auto loss_at = [&](double step) {
      const Tensor b = in.b.clone();
      for (std::int64_t e = 0; e < b.numel(); ++e) {
        b.data<float>()[e] += static_cast<float>(step) * direction.data<float>()[e];
      }
      const Tensor out = Tensor::empty(in.v.shape(), DType::f32);
      rpe_attention_forward(context, in.q, in.k, in.v, b, options, out);
      return weighted_sum(as_f64(out), as_f64(in.grad_out));
    };
    const double step = 1e-2;
    const double numeric = (loss_at(step) - loss_at(-step)) / (2.0 * step);
    const double analytic = weighted_sum(as_f64(grad_b), as_f64(direction));
    EXPECT_NEAR(analytic, numeric, 2e-3 * std::max(1.0, std::abs(numeric)));
  }
}

}  // namespace
}  // namespace longseq::test
