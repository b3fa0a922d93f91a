// Matrix products against the reference: every transpose combination, alpha / beta, batches.
#include "kernels/gemm.h"

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/reference.h"
#include "tests/kernels/harness.h"

namespace longseq::test {
namespace {

struct GemmParameters {
  std::int64_t m = 37;
  std::int64_t n = 53;
  std::int64_t k = 71;
  bool transpose_a = false;
  bool transpose_b = false;
  std::int64_t batch = 0;  // 0: plain matrices; otherwise (batch, rows, columns)
  float alpha = 1.0f;
  float beta = 0.0f;
  // CUDA 16-bit inputs writing an fp32 c (otherwise c has the inputs' dtype).
  bool fp32_output = false;
  std::uint64_t seed = 1;
};

class GemmCase final : public KernelCase {
 public:
  explicit GemmCase(GemmParameters parameters) : p_(parameters) {}

  [[nodiscard]] std::string name() const override {
    std::string text = fmt::format("gemm_{}{}_m{}_n{}_k{}", p_.transpose_a ? "t" : "n",
                                   p_.transpose_b ? "t" : "n", p_.m, p_.n, p_.k);
    if (p_.batch > 0) text += fmt::format("_batch{}", p_.batch);
    if (p_.alpha != 1.0f || p_.beta != 0.0f) text += "_alpha_beta";
    if (p_.fp32_output) text += "_c32";
    return text;
  }

  [[nodiscard]] std::vector<DType> dtypes(Device device) const override {
    if (device == Device::cpu) {
      return p_.fp32_output ? std::vector<DType>{} : std::vector<DType>{DType::f32};
    }
    if (p_.fp32_output) {
      return {DType::bf16, DType::f16};
    }
    return {DType::f32, DType::bf16, DType::f16};
  }

  [[nodiscard]] double flops() const override {
    return 2.0 * static_cast<double>(p_.m * p_.n * p_.k) *
           static_cast<double>(p_.batch > 0 ? p_.batch : 1);
  }

  [[nodiscard]] Results run(ComputeContext& context, Device device, DType dtype) const override {
    const Inputs host = inputs(dtype);
    const Tensor c = on_device(host.c, device);
    gemm(context, on_device(host.a, device), p_.transpose_a, on_device(host.b, device),
         p_.transpose_b, c, p_.alpha, p_.beta);
    context.synchronize();
    return {{"c", to_host(c)}};
  }

  [[nodiscard]] Results reference(DType dtype) const override {
    const Inputs in = inputs(dtype);
    const Tensor c = in.c.to(DType::f64).clone();
    reference::gemm(in.a, p_.transpose_a, in.b, p_.transpose_b, c, p_.alpha, p_.beta);
    return {{"c", c}};
  }

 private:
  struct Inputs {
    Tensor a;  // (m, k), or (k, m) transposed; with a leading batch dimension when batched
    Tensor b;  // (k, n), or (n, k) transposed
    Tensor c;  // (m, n), the initial value that beta scales
  };

  [[nodiscard]] Shape batched(std::int64_t rows, std::int64_t columns) const {
    return p_.batch > 0 ? Shape{p_.batch, rows, columns} : Shape{rows, columns};
  }

  [[nodiscard]] Inputs inputs(DType dtype) const {
    const Shape a_shape = p_.transpose_a ? batched(p_.k, p_.m) : batched(p_.m, p_.k);
    const Shape b_shape = p_.transpose_b ? batched(p_.n, p_.k) : batched(p_.k, p_.n);
    return {
        random_normal_tensor(a_shape, p_.seed, 1, dtype),
        random_normal_tensor(b_shape, p_.seed, 2, dtype),
        random_normal_tensor(batched(p_.m, p_.n), p_.seed, 3, p_.fp32_output ? DType::f32 : dtype)};
  }

  GemmParameters p_;
};

std::vector<KernelCasePtr> gemm_cases() {
  std::vector<GemmParameters> list;
  for (const bool transpose_a : {false, true}) {
    for (const bool transpose_b : {false, true}) {
      list.push_back({.transpose_a = transpose_a, .transpose_b = transpose_b});
      list.push_back({.m = 64,
                      .n = 17,
                      .k = 130,
                      .transpose_a = transpose_a,
                      .transpose_b = transpose_b,
                      .alpha = 0.5f,
                      .beta = 2.0f});
    }
  }
  list.push_back({.m = 17, .n = 29, .k = 45, .transpose_b = true, .batch = 3});
  list.push_back(
      {.m = 33, .n = 8, .k = 19, .transpose_a = true, .batch = 4, .alpha = -1.5f, .beta = 1.0f});
  list.push_back({.m = 256, .n = 192, .k = 320});
  list.push_back({.m = 1, .n = 1, .k = 1});
  list.push_back({.m = 37, .n = 53, .k = 71, .transpose_b = true, .fp32_output = true});
  std::vector<KernelCasePtr> cases;
  std::uint64_t seed = 51;
  for (GemmParameters& p : list) {
    p.seed = seed++;
    cases.push_back(std::make_shared<GemmCase>(p));
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Gemm, CpuBackend, testing::ValuesIn(cases_for(Device::cpu, gemm_cases())),
                         case_name);
INSTANTIATE_TEST_SUITE_P(Gemm, CudaBackend,
                         testing::ValuesIn(cases_for(Device::cuda, gemm_cases())), case_name);

TEST(ReferenceGemm, SmallProductByHand) {
  // [[1, 2], [3, 4]] [[5, 6], [7, 8]] = [[19, 22], [43, 50]]; then 2 * that - 1 * c.
  const Tensor a = tensor_from({1, 2, 3, 4}, {2, 2});
  const Tensor b = tensor_from({5, 6, 7, 8}, {2, 2});
  const Tensor c = tensor_from({1, 1, 1, 1}, {2, 2});
  reference::gemm(a, false, b, false, c, 2.0f, -1.0f);
  const std::vector<double> expected{37, 43, 85, 99};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_DOUBLE_EQ(c.data<double>()[i], expected[i]) << i;
  }
  // a^T b^T = (b a)^T: [[1, 3], [2, 4]] [[5, 7], [6, 8]] = [[23, 31], [34, 46]].
  const Tensor product = Tensor::empty({2, 2}, DType::f64);
  reference::gemm(a, true, b, true, product, 1.0f, 0.0f);
  const std::vector<double> expected_transposed{23, 31, 34, 46};
  for (std::size_t i = 0; i < expected_transposed.size(); ++i) {
    EXPECT_DOUBLE_EQ(product.data<double>()[i], expected_transposed[i]) << i;
  }
}

}  // namespace
}  // namespace longseq::test
