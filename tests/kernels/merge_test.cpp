// Log-sum-exp merging of partial attention results: the merge operation against the reference
// (forward and backward), attention split over s key ranges and merged against the unsplit
// reference (a ring's forward and backward), and the reference merge against finite differences.
#include "kernels/merge.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "kernels/attention.h"
#include "kernels/reference.h"
#include "tests/kernels/harness.h"

namespace longseq::test {
namespace {

constexpr double kNegativeInfinity = -std::numeric_limits<double>::infinity();

// ---- merge on its own

struct MergeParameters {
  int parts = 2;
  std::int64_t batch = 2;
  std::int64_t heads = 3;
  std::int64_t length = 41;
  std::int64_t head_dim = 32;
  // This partial saw no key in any row (LSE -inf everywhere); -1 for none.
  int empty_part = -1;
  bool with_grad_lse = true;
  std::uint64_t seed = 1;
};

class MergeCase final : public KernelCase {
 public:
  explicit MergeCase(MergeParameters parameters) : p_(parameters) {}

  [[nodiscard]] std::string name() const override {
    return fmt::format("merge_s{}_b{}_h{}_n{}_d{}{}{}", p_.parts, p_.batch, p_.heads, p_.length,
                       p_.head_dim,
                       p_.empty_part >= 0 ? fmt::format("_empty{}", p_.empty_part) : "",
                       p_.with_grad_lse ? "_gradlse" : "");
  }

  [[nodiscard]] std::vector<DType> dtypes(Device) const override { return {DType::f32}; }

  [[nodiscard]] double flops() const override {
    return 8.0 * p_.parts * static_cast<double>(p_.batch * p_.heads * p_.length * p_.head_dim);
  }

  [[nodiscard]] Results run(ComputeContext& context, Device device, DType) const override {
    const Inputs host = inputs();
    std::vector<Tensor> outs;
    std::vector<Tensor> lses;
    std::vector<Tensor> grad_outs;
    std::vector<Tensor> grad_lses;
    for (int s = 0; s < p_.parts; ++s) {
      outs.push_back(on_device(host.outs[s], device));
      lses.push_back(on_device(host.lses[s], device));
      grad_outs.push_back(Tensor::empty(out_shape(), DType::f32, device));
      grad_lses.push_back(Tensor::empty(lse_shape(), DType::f32, device));
    }
    const Tensor out = Tensor::empty(out_shape(), DType::f32, device);
    const Tensor lse = Tensor::empty(lse_shape(), DType::f32, device);
    merge_attention_forward(context, outs, lses, out, lse);
    const Tensor grad_lse = p_.with_grad_lse ? on_device(host.grad_lse, device) : Tensor();
    merge_attention_backward(context, on_device(host.grad_out, device), grad_lse, outs, lses, out,
                             lse, grad_outs, grad_lses);
    context.synchronize();
    Results results{{"out", to_host(out)}, {"lse", to_host(lse)}};
    for (int s = 0; s < p_.parts; ++s) {
      results.push_back({fmt::format("grad_out_{}", s), to_host(grad_outs[s])});
      results.push_back({fmt::format("grad_lse_{}", s), to_host(grad_lses[s])});
    }
    return results;
  }

  [[nodiscard]] Results reference(DType) const override {
    const Inputs in = inputs();
    const Tensor out = Tensor::empty(out_shape(), DType::f64);
    const Tensor lse = Tensor::empty(lse_shape(), DType::f64);
    reference::merge_attention_forward(in.outs, in.lses, out, lse);
    std::vector<Tensor> grad_outs;
    std::vector<Tensor> grad_lses;
    for (int s = 0; s < p_.parts; ++s) {
      grad_outs.push_back(Tensor::empty(out_shape(), DType::f64));
      grad_lses.push_back(Tensor::empty(lse_shape(), DType::f64));
    }
    reference::merge_attention_backward(in.grad_out, p_.with_grad_lse ? in.grad_lse : Tensor(),
                                        in.outs, in.lses, grad_outs, grad_lses);
    Results results{{"out", out}, {"lse", lse}};
    for (int s = 0; s < p_.parts; ++s) {
      results.push_back({fmt::format("grad_out_{}", s), grad_outs[s]});
      results.push_back({fmt::format("grad_lse_{}", s), grad_lses[s]});
    }
    return results;
  }

  // Rows that no partial saw: output exactly 0 and LSE -inf. An empty partial gets gradient 0.
  void check_properties(const Results& results) const override {
    const std::int64_t rows = shape_numel(lse_shape());
    const std::vector<double> out = to_double_vector(results[0].tensor);
    const std::vector<double> lse = to_double_vector(results[1].tensor);
    std::int64_t wrong = 0;
    for (std::int64_t row = 0; row < rows; ++row) {
      if (!empty_everywhere(row)) {
        continue;
      }
      wrong += lse[row] == kNegativeInfinity ? 0 : 1;
      for (std::int64_t d = 0; d < p_.head_dim; ++d) {
        wrong += out[row * p_.head_dim + d] == 0.0 ? 0 : 1;
      }
    }
    EXPECT_EQ(wrong, 0) << "rows that no partial saw must give output 0 and LSE -inf";
    if (p_.empty_part >= 0) {
      for (const NamedTensor& result : results) {
        if (result.name == fmt::format("grad_out_{}", p_.empty_part) ||
            result.name == fmt::format("grad_lse_{}", p_.empty_part)) {
          std::int64_t nonzero = 0;
          for (const double value : to_double_vector(result.tensor)) {
            nonzero += value == 0.0 ? 0 : 1;
          }
          EXPECT_EQ(nonzero, 0) << result.name << " of an empty partial must be 0";
        }
      }
    }
  }

 private:
  struct Inputs {
    std::vector<Tensor> outs;  // [s] (B, H, N, D)
    std::vector<Tensor> lses;  // [s] (B, H, N)
    Tensor grad_out;           // (B, H, N, D)
    Tensor grad_lse;           // (B, H, N)
  };

  [[nodiscard]] Shape out_shape() const { return {p_.batch, p_.heads, p_.length, p_.head_dim}; }
  [[nodiscard]] Shape lse_shape() const { return {p_.batch, p_.heads, p_.length}; }
  // Every seventh row is empty in all partials.
  [[nodiscard]] static bool empty_everywhere(std::int64_t row) { return row % 7 == 3; }

  [[nodiscard]] Inputs inputs() const {
    Inputs in;
    for (int s = 0; s < p_.parts; ++s) {
      const std::uint64_t stream = 10 * static_cast<std::uint64_t>(s);
      in.outs.push_back(random_normal_tensor(out_shape(), p_.seed, stream + 1));
      // LSEs of a realistic size and spread, so that the shares differ by orders of magnitude.
      Tensor lse = random_normal_tensor(lse_shape(), p_.seed, stream + 2, DType::f32, 3.0, 4.0);
      float* values = lse.data<float>();
      for (std::int64_t row = 0; row < lse.numel(); ++row) {
        // Partial 0 also misses every fifth row on its own.
        if (s == p_.empty_part || empty_everywhere(row) || (s == 0 && row % 5 == 1)) {
          values[row] = -std::numeric_limits<float>::infinity();
        }
      }
      in.lses.push_back(lse);
    }
    in.grad_out = random_normal_tensor(out_shape(), p_.seed, 100);
    in.grad_lse = random_normal_tensor(lse_shape(), p_.seed, 101);
    return in;
  }

  MergeParameters p_;
};

std::vector<KernelCasePtr> merge_cases() {
  return {
      std::make_shared<MergeCase>(MergeParameters{.parts = 2, .seed = 1}),
      std::make_shared<MergeCase>(MergeParameters{.parts = 2, .with_grad_lse = false, .seed = 2}),
      std::make_shared<MergeCase>(MergeParameters{.parts = 3, .empty_part = 1, .seed = 3}),
      std::make_shared<MergeCase>(MergeParameters{.parts = 4,
                                                  .batch = 1,
                                                  .heads = 4,
                                                  .length = 113,
                                                  .head_dim = 64,
                                                  .empty_part = 3,
                                                  .seed = 4}),
      std::make_shared<MergeCase>(MergeParameters{
          .parts = 4, .head_dim = 59, .empty_part = 0, .with_grad_lse = false, .seed = 5}),
  };
}

INSTANTIATE_TEST_SUITE_P(Merge, CpuBackend,
                         testing::ValuesIn(cases_for(Device::cpu, merge_cases())), case_name);
INSTANTIATE_TEST_SUITE_P(Merge, CudaBackend,
                         testing::ValuesIn(cases_for(Device::cuda, merge_cases())), case_name);

// ---- attention over split key ranges, merged (a ring step by step)

struct SplitParameters {
  std::int64_t query_heads = 2;
  std::int64_t kv_heads = 2;
  std::int64_t query_length = 97;
  std::int64_t key_length = 97;
  std::int64_t head_dim = 64;
  bool causal = true;
  std::optional<std::int64_t> query_offset = std::nullopt;
  std::int64_t key_offset = 0;
  // Key range boundaries: part s holds keys [splits[s], splits[s + 1]).
  std::vector<std::int64_t> splits;
  std::string label = {};
  std::uint64_t seed = 1;
};

class SplitMergeCase final : public KernelCase {
 public:
  explicit SplitMergeCase(SplitParameters parameters) : p_(std::move(parameters)) {}

  [[nodiscard]] std::string name() const override {
    return fmt::format("split_s{}_h{}x{}_q{}_k{}_d{}{}_{}", p_.splits.size() - 1, p_.query_heads,
                       p_.kv_heads, p_.query_length, p_.key_length, p_.head_dim,
                       p_.causal ? "_causal" : "", p_.label);
  }

  [[nodiscard]] std::vector<DType> dtypes(Device device) const override {
    if (device == Device::cpu) {
      return {DType::f32};
    }
    return {DType::bf16, DType::f16};
  }

  [[nodiscard]] double flops() const override {
    return attention_flops(1, p_.query_heads, p_.query_length, p_.key_length, p_.head_dim,
                           p_.causal);
  }

  [[nodiscard]] Results run(ComputeContext& context, Device device, DType dtype) const override {
    const AttentionInputs host = inputs(dtype);
    const Tensor q = on_device(host.q, device);
    const Tensor grad_out = on_device(host.grad_out, device);
    const std::int64_t parts = static_cast<std::int64_t>(p_.splits.size()) - 1;

    // Forward: each part attends the queries to its key range, at its global key offset.
    std::vector<Tensor> keys, values, part_outs, part_lses;
    std::vector<AttentionOptions> part_options;
    for (std::int64_t s = 0; s < parts; ++s) {
      keys.push_back(
          on_device(host.k.slice(2, p_.splits[s], p_.splits[s + 1]).contiguous(), device));
      values.push_back(
          on_device(host.v.slice(2, p_.splits[s], p_.splits[s + 1]).contiguous(), device));
      part_options.push_back(options_for(p_.splits[s]));
      const Tensor out = Tensor::empty(q.shape(), dtype, device);
      const Tensor lse = Tensor::empty(lse_shape(), DType::f32, device);
      flash_attention_forward(context, q, keys[s], values[s], part_options[s], out, lse);
      // Partial outputs merge in fp32.
      part_outs.push_back(converted(context, out, DType::f32, device));
      part_lses.push_back(lse);
    }
    const Tensor out = Tensor::empty(q.shape(), DType::f32, device);
    const Tensor lse = Tensor::empty(lse_shape(), DType::f32, device);
    merge_attention_forward(context, part_outs, part_lses, out, lse);

    // Backward: every part uses the merged output and LSE; query gradients add up, key and value
    // gradients belong to their parts.
    const Tensor merged_out = converted(context, out, dtype, device);
    Tensor grad_q = Tensor::zeros(q.shape(), DType::f64);
    const Tensor grad_k = Tensor::empty(host.k.shape(), DType::f64);
    const Tensor grad_v = Tensor::empty(host.v.shape(), DType::f64);
    for (std::int64_t s = 0; s < parts; ++s) {
      const Tensor part_grad_q = Tensor::empty(q.shape(), dtype, device);
      const Tensor part_grad_k = Tensor::empty(keys[s].shape(), dtype, device);
      const Tensor part_grad_v = Tensor::empty(values[s].shape(), dtype, device);
      flash_attention_backward(context, q, keys[s], values[s], merged_out, lse, grad_out,
                               part_options[s], part_grad_q, part_grad_k, part_grad_v);
      context.synchronize();
      const Tensor part_q = as_f64(part_grad_q);
      for (std::int64_t i = 0; i < grad_q.numel(); ++i) {
        grad_q.data<double>()[i] += part_q.data<double>()[i];
      }
      grad_k.slice(2, p_.splits[s], p_.splits[s + 1]).copy_from(as_f64(part_grad_k));
      grad_v.slice(2, p_.splits[s], p_.splits[s + 1]).copy_from(as_f64(part_grad_v));
    }
    context.synchronize();
    return {{"out", to_host(out)},
            {"lse", to_host(lse)},
            {"grad_q", grad_q},
            {"grad_k", grad_k},
            {"grad_v", grad_v}};
  }

  [[nodiscard]] Results reference(DType dtype) const override {
    AttentionOptions options;
    options.causal = p_.causal;
    options.query_offset = p_.query_offset;
    options.key_offset = p_.key_offset;
    return reference_attention(inputs(dtype), options);
  }

 private:
  [[nodiscard]] Shape lse_shape() const { return {1, p_.query_heads, p_.query_length}; }

  // B = 1.
  [[nodiscard]] AttentionInputs inputs(DType dtype) const {
    return random_attention_inputs({1, p_.query_heads, p_.query_length, p_.head_dim},
                                   {1, p_.kv_heads, p_.key_length, p_.head_dim}, p_.seed, dtype);
  }

  // A part's call passes both global offsets, as a ring step does: the queries' offset resolved
  // once for the whole key range (bottom-right unless given), the part's first key position.
  [[nodiscard]] AttentionOptions options_for(std::int64_t first_key) const {
    AttentionOptions options;
    options.causal = p_.causal;
    options.query_offset =
        p_.query_offset.value_or(p_.key_offset + p_.key_length - p_.query_length);
    options.key_offset = p_.key_offset + first_key;
    return options;
  }

  // `tensor` in `dtype` on `device` (16-bit conversions go through the host).
  static Tensor converted(ComputeContext& context, const Tensor& tensor, DType dtype,
                          Device device) {
    if (tensor.dtype() == dtype) {
      return tensor;
    }
    context.synchronize();
    return on_device(to_host(tensor).to(dtype), device);
  }

  SplitParameters p_;
};

std::vector<KernelCasePtr> split_merge_cases() {
  std::vector<SplitParameters> list{
      {.splits = {0, 50, 97}, .label = "self"},
      // The second range lies after every query: an empty partial (LSE -inf, output 0).
      {.query_length = 64,
       .key_length = 128,
       .query_offset = 0,
       .splits = {0, 64, 128},
       .label = "empty"},
      {.query_heads = 4,
       .kv_heads = 2,
       .query_length = 113,
       .key_length = 203,
       .head_dim = 32,
       .causal = false,
       .splits = {0, 70, 71, 203},
       .label = "dense"},
      {.query_heads = 4,
       .kv_heads = 2,
       .query_length = 64,
       .key_length = 128,
       .query_offset = 0,
       .splits = {0, 23, 64, 128},
       .label = "empty"},
      {.query_heads = 4,
       .kv_heads = 1,
       .query_length = 113,
       .key_length = 203,
       .splits = {0, 50, 90, 150, 203},
       .label = "bottom_right"},
      {.query_length = 97,
       .key_length = 300,
       .head_dim = 32,
       .query_offset = 100,
       .splits = {0, 80, 150, 200, 300},
       .label = "ring_empty"},
  };
  std::vector<KernelCasePtr> cases;
  std::uint64_t seed = 31;
  for (SplitParameters& p : list) {
    p.seed = seed++;
    cases.push_back(std::make_shared<SplitMergeCase>(std::move(p)));
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(SplitMerge, CpuBackend,
                         testing::ValuesIn(cases_for(Device::cpu, split_merge_cases())), case_name);
INSTANTIATE_TEST_SUITE_P(SplitMerge, CudaBackend,
                         testing::ValuesIn(cases_for(Device::cuda, split_merge_cases())),
                         case_name);

// ---- the reference merge on its own

TEST(ReferenceMerge, EqualPartialsAverage) {
  const Tensor first = tensor_from({1, 2, 3, 4}, {1, 1, 2, 2});
  const Tensor second = tensor_from({3, 6, 5, 8}, {1, 1, 2, 2});
  const Tensor first_lse = tensor_from({0.5, kNegativeInfinity}, {1, 1, 2});
  const Tensor second_lse = tensor_from({0.5, 2.0}, {1, 1, 2});
  const std::vector<Tensor> outs{first, second};
  const std::vector<Tensor> lses{first_lse, second_lse};
  const Tensor out = Tensor::empty({1, 1, 2, 2}, DType::f64);
  const Tensor lse = Tensor::empty({1, 1, 2}, DType::f64);
  reference::merge_attention_forward(outs, lses, out, lse);
  // Row 0: equal shares; row 1: only the second partial saw keys.
  const std::vector<double> expected_out{2, 4, 5, 8};
  for (std::size_t i = 0; i < expected_out.size(); ++i) {
    EXPECT_NEAR(out.data<double>()[i], expected_out[i], 1e-12) << i;
  }
  EXPECT_NEAR(lse.data<double>()[0], 0.5 + std::log(2.0), 1e-12);
  EXPECT_NEAR(lse.data<double>()[1], 2.0, 1e-12);
}

TEST(ReferenceMerge, GradientsMatchFiniteDifferences) {
  const Shape out_shape{1, 2, 4, 3};
  const Shape lse_shape{1, 2, 4};
  std::vector<Tensor> outs;
  std::vector<Tensor> lses;
  for (std::uint64_t s = 0; s < 3; ++s) {
    outs.push_back(random_normal_tensor(out_shape, 41, 10 * s + 1, DType::f64));
    lses.push_back(random_normal_tensor(lse_shape, 41, 10 * s + 2, DType::f64));
  }
  // Partial 1 misses row 2; no partial sees row 3 of head 1.
  lses[1].data<double>()[2] = kNegativeInfinity;
  for (const Tensor& lse : lses) {
    lse.data<double>()[7] = kNegativeInfinity;
  }
  const Tensor out_weights = random_normal_tensor(out_shape, 41, 100, DType::f64);
  Tensor lse_weights = random_normal_tensor(lse_shape, 41, 101, DType::f64);
  lse_weights.data<double>()[7] = 0.0;  // its LSE is -inf
  const auto loss = [&] {
    const Tensor out = Tensor::empty(out_shape, DType::f64);
    const Tensor lse = Tensor::empty(lse_shape, DType::f64);
    reference::merge_attention_forward(outs, lses, out, lse);
    return weighted_sum(out, out_weights) + weighted_sum(lse, lse_weights);
  };
  std::vector<Tensor> grad_outs;
  std::vector<Tensor> grad_lses;
  for (int s = 0; s < 3; ++s) {
    grad_outs.push_back(Tensor::empty(out_shape, DType::f64));
    grad_lses.push_back(Tensor::empty(lse_shape, DType::f64));
  }
  reference::merge_attention_backward(out_weights, lse_weights, outs, lses, grad_outs, grad_lses);
  for (int s = 0; s < 3; ++s) {
    SCOPED_TRACE(fmt::format("partial {}", s));
    // Perturbing a -inf LSE leaves it -inf: the differences are 0 there, as the gradient must be.
    expect_gradient_matches("grad_out", grad_outs[s], finite_difference_gradient(outs[s], loss),
                            1e-7);
    expect_gradient_matches("grad_lse", grad_lses[s], finite_difference_gradient(lses[s], loss),
                            1e-7);
  }
}

}  // namespace
}  // namespace longseq::test
