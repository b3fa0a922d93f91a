// Flash and materialised softmax attention against the reference, forward and backward; the
// reference itself against hand-computed values and finite differences; the shape errors.
#include "kernels/attention.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "kernels/reference.h"
#include "runtime/device.h"
#include "runtime/philox.h"
#include "tests/kernels/harness.h"

namespace longseq::test {
namespace {

enum class AttentionKind { flash, softmax };
enum class MaskKind { none, random, all_ones };

struct AttentionParameters {
  AttentionKind kind = AttentionKind::flash;
  std::int64_t batch = 1;
  std::int64_t query_heads = 2;
  std::int64_t kv_heads = 2;
  std::int64_t query_length = 97;
  std::int64_t key_length = 97;
  std::int64_t head_dim = 64;
  bool causal = false;
  std::optional<std::int64_t> query_offset = std::nullopt;
  std::int64_t key_offset = 0;
  float scale = 0.0f;
  double input_scale = 1.0;  // larger inputs give peaked softmax rows
  MaskKind mask = MaskKind::none;
  std::int64_t mask_block_q = 64;
  std::int64_t mask_block_k = 64;
  // Every row is hidden (a ring step whose keys all lie after the queries): outputs 0, LSE -inf,
  // gradients 0, exactly.
  bool expect_empty = false;
  std::uint64_t seed = 1;
  std::string label = {};
};

void attention_forward(AttentionKind kind, ComputeContext& context, const AttentionInputs& in,
                       const AttentionOptions& options, const Tensor& out, const Tensor& lse) {
  if (kind == AttentionKind::flash) {
    flash_attention_forward(context, in.q, in.k, in.v, options, out, lse);
  } else {
    softmax_attention_forward(context, in.q, in.k, in.v, options, out, lse);
  }
}

void attention_backward(AttentionKind kind, ComputeContext& context, const AttentionInputs& in,
                        const Tensor& out, const Tensor& lse, const AttentionOptions& options,
                        const Tensor& grad_q, const Tensor& grad_k, const Tensor& grad_v) {
  if (kind == AttentionKind::flash) {
    flash_attention_backward(context, in.q, in.k, in.v, out, lse, in.grad_out, options, grad_q,
                             grad_k, grad_v);
  } else {
    softmax_attention_backward(context, in.q, in.k, in.v, out, lse, in.grad_out, options, grad_q,
                               grad_k, grad_v);
  }
}

class AttentionCase final : public KernelCase {
 public:
  explicit AttentionCase(AttentionParameters parameters) : p_(std::move(parameters)) {}

  [[nodiscard]] std::string name() const override {
    std::string text = fmt::format(
        "{}_b{}_h{}x{}_q{}_k{}_d{}", p_.kind == AttentionKind::flash ? "flash" : "softmax",
        p_.batch, p_.query_heads, p_.kv_heads, p_.query_length, p_.key_length, p_.head_dim);
    if (p_.causal) text += "_causal";
    if (p_.query_offset) text += fmt::format("_qoff{}", *p_.query_offset);
    if (p_.key_offset != 0) text += fmt::format("_koff{}", p_.key_offset);
    if (p_.scale != 0.0f) text += "_scaled";
    if (p_.mask == MaskKind::random)
      text += fmt::format("_mask{}x{}", p_.mask_block_q, p_.mask_block_k);
    if (p_.mask == MaskKind::all_ones) text += "_maskones";
    if (!p_.label.empty()) text += "_" + p_.label;
    return text;
  }

  [[nodiscard]] std::vector<DType> dtypes(Device device) const override {
    if (device == Device::cpu) {
      return {DType::f32};
    }
    // The CUDA kernels take head dims that are multiples of 8 (checked by a test of its own).
    if (p_.head_dim % 8 != 0) {
      return {};
    }
    return {DType::bf16, DType::f16};
  }

  [[nodiscard]] double flops() const override {
    return attention_flops(p_.batch, p_.query_heads, p_.query_length, p_.key_length, p_.head_dim,
                           p_.causal);
  }

  [[nodiscard]] Results run(ComputeContext& context, Device device, DType dtype) const override {
    const AttentionInputs host = inputs(dtype);
    const AttentionInputs in{on_device(host.q, device), on_device(host.k, device),
                             on_device(host.v, device), on_device(host.grad_out, device)};
    const AttentionOptions attention_options = options(false);
    const Tensor out = Tensor::empty(in.q.shape(), dtype, device);
    const Tensor lse =
        Tensor::empty({p_.batch, p_.query_heads, p_.query_length}, DType::f32, device);
    attention_forward(p_.kind, context, in, attention_options, out, lse);
    const Tensor grad_q = Tensor::empty(in.q.shape(), dtype, device);
    const Tensor grad_k = Tensor::empty(in.k.shape(), dtype, device);
    const Tensor grad_v = Tensor::empty(in.v.shape(), dtype, device);
    attention_backward(p_.kind, context, in, out, lse, attention_options, grad_q, grad_k, grad_v);
    context.synchronize();
    return {{"out", to_host(out)},
            {"lse", to_host(lse)},
            {"grad_q", to_host(grad_q)},
            {"grad_k", to_host(grad_k)},
            {"grad_v", to_host(grad_v)}};
  }

  [[nodiscard]] Results reference(DType dtype) const override {
    // An all-ones mask must give the dense result: the reference does not see the mask at all.
    return reference_attention(inputs(dtype), options(p_.mask == MaskKind::all_ones));
  }

  void check_properties(const Results& results) const override {
    if (!p_.expect_empty) {
      return;
    }
    for (const NamedTensor& result : results) {
      const double expected = result.name == "lse" ? -std::numeric_limits<double>::infinity() : 0.0;
      std::int64_t different = 0;
      for (const double value : to_double_vector(result.tensor)) {
        different += value == expected ? 0 : 1;
      }
      EXPECT_EQ(different, 0) << result.name << " of a fully masked block must be exactly "
                              << expected;
    }
  }

 private:
  [[nodiscard]] AttentionInputs inputs(DType dtype) const {
    return random_attention_inputs({p_.batch, p_.query_heads, p_.query_length, p_.head_dim},
                                   {p_.batch, p_.kv_heads, p_.key_length, p_.head_dim}, p_.seed,
                                   dtype, p_.input_scale);
  }

  [[nodiscard]] AttentionOptions options(bool without_mask) const {
    AttentionOptions options;
    options.scale = p_.scale;
    options.causal = p_.causal;
    options.query_offset = p_.query_offset;
    options.key_offset = p_.key_offset;
    options.mask_block_q = p_.mask_block_q;
    options.mask_block_k = p_.mask_block_k;
    if (p_.mask != MaskKind::none && !without_mask) {
      const std::int64_t rows = (p_.query_length + p_.mask_block_q - 1) / p_.mask_block_q;
      const std::int64_t columns = (p_.key_length + p_.mask_block_k - 1) / p_.mask_block_k;
      options.block_mask = Tensor::empty({rows, columns}, DType::u8);
      std::uint8_t* bits = options.block_mask.data<std::uint8_t>();
      for (std::int64_t i = 0; i < rows * columns; ++i) {
        // About 60% of the blocks kept: rows with every block removed occur and must come out
        // empty.
        bits[i] = p_.mask == MaskKind::all_ones ||
                  random_uniform(p_.seed, 5, static_cast<std::uint64_t>(i)) < 0.6f;
      }
    }
    return options;
  }

  AttentionParameters p_;
};

// Shapes drawn from a seeded stream: the same "random" shapes every run.
std::vector<AttentionParameters> random_shapes(int count, std::uint64_t seed) {
  std::vector<AttentionParameters> shapes;
  std::uint64_t draw = 0;
  const auto pick = [&](std::int64_t low, std::int64_t high) {
    return low + static_cast<std::int64_t>(
                     random_uniform(seed, 0, draw++) * static_cast<float>(high - low + 1) - 1e-3f);
  };
  for (int i = 0; i < count; ++i) {
    AttentionParameters p;
    p.kind = pick(0, 1) == 0 ? AttentionKind::flash : AttentionKind::softmax;
    p.batch = pick(1, 2);
    p.kv_heads = pick(1, 2);
    p.query_heads = p.kv_heads * pick(1, 3);
    p.query_length = pick(1, 260);
    p.key_length = pick(1, 260);
    p.head_dim = 8 * pick(1, 16);
    p.causal = pick(0, 1) == 1;
    p.seed = 1000 + static_cast<std::uint64_t>(i);
    p.label = fmt::format("random{}", i);
    shapes.push_back(p);
  }
  return shapes;
}

std::vector<KernelCasePtr> attention_cases() {
  std::vector<AttentionParameters> list;
  const auto add = [&list](AttentionParameters p) {
    p.seed = 11 + list.size();
    list.push_back(std::move(p));
  };
  for (const AttentionKind kind : {AttentionKind::flash, AttentionKind::softmax}) {
    // Odd lengths, causal and not.
    for (const bool causal : {false, true}) {
      add({.kind = kind, .batch = 2, .query_length = 97, .key_length = 97, .causal = causal});
      add({.kind = kind,
           .query_heads = 4,
           .kv_heads = 2,
           .query_length = 113,
           .key_length = 113,
           .head_dim = 32,
           .causal = causal});
      // Lq != Lk: causal uses the bottom-right alignment.
      add({.kind = kind,
           .query_heads = 4,
           .kv_heads = 1,
           .query_length = 113,
           .key_length = 203,
           .causal = causal});
    }
    // Long rows, kept to one or two heads because the double reference is O(N^2).
    add({.kind = kind,
         .query_heads = 1,
         .kv_heads = 1,
         .query_length = 1025,
         .key_length = 1025,
         .head_dim = kind == AttentionKind::flash ? 64 : 32,
         .causal = kind == AttentionKind::flash});
    // Head dims (59: CPU only).
    for (const std::int64_t head_dim : {32, 59, 128, 256}) {
      add({.kind = kind,
           .query_heads = 2,
           .kv_heads = 1,
           .query_length = 97,
           .key_length = 113,
           .head_dim = head_dim,
           .causal = true});
    }
    // Ring steps with explicit offsets: a partially visible block, one whose first rows see
    // nothing, and one entirely after the queries.
    add({.kind = kind,
         .query_heads = 4,
         .kv_heads = 2,
         .query_length = 128,
         .key_length = 128,
         .causal = true,
         .query_offset = 256,
         .key_offset = 192,
         .label = "ring_partial"});
    add({.kind = kind,
         .query_length = 97,
         .key_length = 97,
         .causal = true,
         .query_offset = 0,
         .key_offset = 50,
         .label = "ring_empty_rows"});
    add({.kind = kind,
         .query_heads = 4,
         .kv_heads = 2,
         .query_length = 64,
         .key_length = 64,
         .causal = true,
         .query_offset = 0,
         .key_offset = 128,
         .expect_empty = true,
         .label = "ring_masked_block"});
    // Block-sparse masks, alone and with causal masking; all-ones equals dense.
    add({.kind = kind, .query_length = 203, .key_length = 203, .mask = MaskKind::random});
    add({.kind = kind,
         .query_length = 203,
         .key_length = 203,
         .causal = true,
         .mask = MaskKind::random,
         .mask_block_q = 48,
         .mask_block_k = 80});
    add({.kind = kind,
         .query_length = 203,
         .key_length = 203,
         .causal = true,
         .mask = MaskKind::all_ones});
    // An explicit scale with peaked rows.
    add({.kind = kind,
         .query_length = 97,
         .key_length = 97,
         .causal = true,
         .scale = 0.3f,
         .input_scale = 3.0});
  }
  // Decoding: one query against a long key range.
  add({.query_heads = 4, .kv_heads = 1, .query_length = 1, .key_length = 203, .causal = true});
  for (AttentionParameters& p : random_shapes(4, 77)) {
    list.push_back(std::move(p));
  }
  std::vector<KernelCasePtr> cases;
  for (AttentionParameters& p : list) {
    cases.push_back(std::make_shared<AttentionCase>(std::move(p)));
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Attention, CpuBackend,
                         testing::ValuesIn(cases_for(Device::cpu, attention_cases())), case_name);
INSTANTIATE_TEST_SUITE_P(Attention, CudaBackend,
                         testing::ValuesIn(cases_for(Device::cuda, attention_cases())), case_name);

// ---- the reference on its own

struct SmallProblem {
  Tensor q;  // (1, 2, 5, 3) fp64
  Tensor k;  // (1, 1, 7, 3)
  Tensor v;  // (1, 1, 7, 3)
};

SmallProblem small_problem(std::uint64_t seed) {
  return {random_normal_tensor({1, 2, 5, 3}, seed, 1, DType::f64),
          random_normal_tensor({1, 1, 7, 3}, seed, 2, DType::f64),
          random_normal_tensor({1, 1, 7, 3}, seed, 3, DType::f64)};
}

struct NamedOptions {
  std::string name;
  AttentionOptions options;
};

// Dense; causal bottom-right; an explicit scale with explicit offsets; and ring offsets that hide
// row 0 entirely, with a block mask removing part of row 4's keys.
std::vector<NamedOptions> small_option_sets(bool with_empty_rows) {
  std::vector<NamedOptions> sets;
  sets.push_back({"dense", AttentionOptions{}});
  AttentionOptions causal;
  causal.causal = true;
  sets.push_back({"causal", causal});
  AttentionOptions scaled;
  scaled.scale = 0.7f;
  scaled.causal = true;
  scaled.query_offset = 3;
  scaled.key_offset = 0;
  sets.push_back({"scaled_offsets", scaled});
  if (with_empty_rows) {
    AttentionOptions ring;
    ring.causal = true;
    ring.query_offset = 0;
    ring.key_offset = 1;
    ring.mask_block_q = 2;
    ring.mask_block_k = 3;
    ring.block_mask = Tensor::empty({3, 3}, DType::u8);
    const std::uint8_t bits[9] = {1, 1, 1, 1, 1, 1, 0, 1, 1};
    std::copy(bits, bits + 9, ring.block_mask.data<std::uint8_t>());
    sets.push_back({"ring_mask", ring});
  }
  return sets;
}

TEST(ReferenceAttention, UniformScoresAverageTheVisibleValues) {
  // With k = 0 every visible score is 0: each row averages the values it sees, and its LSE is the
  // log of how many it sees. Bottom-right causal with Nq = 3, Nk = 5: row i sees keys 0..i+2.
  const Tensor q = random_normal_tensor({1, 1, 3, 2}, 5, 1, DType::f64);
  const Tensor k = Tensor::zeros({1, 1, 5, 2}, DType::f64);
  const Tensor v = tensor_from({1, 10, 2, 20, 3, 30, 4, 40, 5, 50}, {1, 1, 5, 2});
  AttentionOptions options;
  options.causal = true;
  const Tensor out = Tensor::empty({1, 1, 3, 2}, DType::f64);
  const Tensor lse = Tensor::empty({1, 1, 3}, DType::f64);
  reference::attention_forward(q, k, v, options, out, lse);
  const std::vector<double> expected_out{2, 20, 2.5, 25, 3, 30};
  const std::vector<double> expected_lse{std::log(3.0), std::log(4.0), std::log(5.0)};
  for (std::size_t i = 0; i < expected_out.size(); ++i) {
    EXPECT_NEAR(out.data<double>()[i], expected_out[i], 1e-12) << i;
  }
  for (std::size_t i = 0; i < expected_lse.size(); ++i) {
    EXPECT_NEAR(lse.data<double>()[i], expected_lse[i], 1e-12) << i;
  }
}

TEST(ReferenceAttention, SingleKeyReturnsItsValue) {
  const Tensor q = random_normal_tensor({1, 2, 4, 3}, 6, 1, DType::f64);
  const Tensor k = random_normal_tensor({1, 1, 1, 3}, 6, 2, DType::f64);
  const Tensor v = random_normal_tensor({1, 1, 1, 3}, 6, 3, DType::f64);
  const Tensor out = Tensor::empty(q.shape(), DType::f64);
  const Tensor lse = Tensor::empty({1, 2, 4}, DType::f64);
  reference::attention_forward(q, k, v, AttentionOptions{}, out, lse);
  const double scale = 1.0 / std::sqrt(3.0);
  for (std::int64_t row = 0; row < 8; ++row) {
    double score = 0.0;
    for (std::int64_t d = 0; d < 3; ++d) {
      EXPECT_NEAR(out.data<double>()[row * 3 + d], v.data<double>()[d], 1e-12);
      score += q.data<double>()[row * 3 + d] * k.data<double>()[d];
    }
    EXPECT_NEAR(lse.data<double>()[row], scale * score, 1e-12);
  }
}

TEST(ReferenceAttention, GradientsMatchFiniteDifferences) {
  for (const NamedOptions& set : small_option_sets(true)) {
    SCOPED_TRACE(set.name);
    const SmallProblem problem = small_problem(21);
    const Tensor weights = random_normal_tensor(problem.q.shape(), 21, 4, DType::f64);
    const auto loss = [&] {
      const Tensor out = Tensor::empty(problem.q.shape(), DType::f64);
      const Tensor lse = Tensor::empty({1, 2, 5}, DType::f64);
      reference::attention_forward(problem.q, problem.k, problem.v, set.options, out, lse);
      return weighted_sum(out, weights);
    };
    const Tensor grad_q = Tensor::empty(problem.q.shape(), DType::f64);
    const Tensor grad_k = Tensor::empty(problem.k.shape(), DType::f64);
    const Tensor grad_v = Tensor::empty(problem.v.shape(), DType::f64);
    reference::attention_backward(problem.q, problem.k, problem.v, weights, set.options, grad_q,
                                  grad_k, grad_v);
    expect_gradient_matches("grad_q", grad_q, finite_difference_gradient(problem.q, loss), 1e-7);
    expect_gradient_matches("grad_k", grad_k, finite_difference_gradient(problem.k, loss), 1e-7);
    expect_gradient_matches("grad_v", grad_v, finite_difference_gradient(problem.v, loss), 1e-7);
  }
}

// The reference has no LSE input gradient, but d LSE_i / d q_i = tau sum_j P_ij k_j is attention
// with v = k, and d LSE_i / d k_j = tau P_ij q_i is the value gradient of attention for
// dO_i = tau q_i: finite differences of sum(w * LSE) check the LSE values through both.
TEST(ReferenceAttention, LseGradientsMatchFiniteDifferences) {
  for (const NamedOptions& set : small_option_sets(false)) {
    SCOPED_TRACE(set.name);
    const SmallProblem problem = small_problem(22);
    const Tensor weights = random_normal_tensor({1, 2, 5}, 22, 4, DType::f64);
    const auto loss = [&] {
      const Tensor out = Tensor::empty(problem.q.shape(), DType::f64);
      const Tensor lse = Tensor::empty({1, 2, 5}, DType::f64);
      reference::attention_forward(problem.q, problem.k, problem.v, set.options, out, lse);
      return weighted_sum(lse, weights);
    };
    const double scale = set.options.scale != 0.0f ? set.options.scale : 1.0 / std::sqrt(3.0);
    const Tensor mean_keys = Tensor::empty(problem.q.shape(), DType::f64);
    const Tensor unused_lse = Tensor::empty({1, 2, 5}, DType::f64);
    reference::attention_forward(problem.q, problem.k, problem.k, set.options, mean_keys,
                                 unused_lse);
    const Tensor grad_q = mean_keys.clone();
    const Tensor scaled_q = problem.q.clone();
    for (std::int64_t i = 0; i < grad_q.numel(); ++i) {
      const double row_weight = scale * weights.data<double>()[i / 3];
      grad_q.data<double>()[i] *= row_weight;
      scaled_q.data<double>()[i] *= row_weight;
    }
    // The value gradient of that call is the LSE gradient of k; its other gradients are not needed.
    const Tensor grad_k = Tensor::empty(problem.k.shape(), DType::f64);
    const Tensor unused_grad_q = Tensor::empty(problem.q.shape(), DType::f64);
    const Tensor unused_grad_k = Tensor::empty(problem.k.shape(), DType::f64);
    reference::attention_backward(problem.q, problem.k, problem.k, scaled_q, set.options,
                                  unused_grad_q, unused_grad_k, grad_k);
    expect_gradient_matches("lse grad_q", grad_q, finite_difference_gradient(problem.q, loss),
                            1e-7);
    expect_gradient_matches("lse grad_k", grad_k, finite_difference_gradient(problem.k, loss),
                            1e-7);
    expect_gradient_matches("lse grad_v", Tensor::zeros(problem.v.shape(), DType::f64),
                            finite_difference_gradient(problem.v, loss), 1e-9);
  }
}

// ---- errors

void expect_user_error_naming(const std::function<void()>& call,
                              const std::vector<std::string>& words) {
  try {
    call();
    ADD_FAILURE() << "expected a longseq::UserError";
  } catch (const UserError& error) {
    const std::string message = error.what();
    for (const std::string& word : words) {
      EXPECT_NE(message.find(word), std::string::npos)
          << "\"" << message << "\" does not name " << word;
    }
  }
}

TEST(AttentionErrors, CpuRejectsHeadDimAbove256) {
  ComputeContext context(kTestThreads);
  const Tensor q = random_normal_tensor({1, 1, 4, 257}, 3, 1);
  const Tensor out = Tensor::empty(q.shape(), DType::f32);
  const Tensor lse = Tensor::empty({1, 1, 4}, DType::f32);
  expect_user_error_naming(
      [&] { flash_attention_forward(context, q, q, q, AttentionOptions{}, out, lse); },
      {"257", "head dim"});
}

TEST(AttentionCuda, RejectsHeadDimNotMultipleOf8) {
  if (cuda_device_count() == 0) {
    GTEST_SKIP() << "no GPU: " << cuda_unavailable_reason();
  }
  ComputeContext context(kTestThreads);
  const Tensor q = random_normal_tensor({1, 2, 16, 59}, 3, 1, DType::bf16).to(Device::cuda);
  const Tensor out = Tensor::empty(q.shape(), DType::bf16, Device::cuda);
  const Tensor lse = Tensor::empty({1, 2, 16}, DType::f32, Device::cuda);
  expect_user_error_naming(
      [&] { flash_attention_forward(context, q, q, q, AttentionOptions{}, out, lse); },
      {"59", "head dim"});
  expect_user_error_naming(
      [&] { softmax_attention_forward(context, q, q, q, AttentionOptions{}, out, lse); },
      {"59", "head dim"});
}

}  // namespace
}  // namespace longseq::test
