#include "tests/kernels/harness.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/reference.h"
#include "runtime/device.h"
#include "runtime/philox.h"

namespace longseq::test {

double default_tolerance(DType dtype) {
  switch (dtype) {
    case DType::bf16:
      return 2e-2;
    case DType::f16:
      return 5e-3;
    default:
      return 1e-5;
  }
}

Tensor tensor_from(const std::vector<double>& values, const Shape& shape, DType dtype) {
  const Tensor staged = Tensor::empty(shape, DType::f64);
  EXPECT_EQ(static_cast<std::int64_t>(values.size()), staged.numel())
      << "tensor_from " << shape_string(shape);
  std::copy(values.begin(), values.end(), staged.data<double>());
  return staged.to(dtype).contiguous();
}

Tensor random_normal_tensor(const Shape& shape, std::uint64_t seed, std::uint64_t stream,
                            DType dtype, double scale, double shift) {
  std::vector<double> values(static_cast<std::size_t>(shape_numel(shape)));
  for (std::size_t i = 0; i < values.size(); ++i) {
    values[i] = scale * static_cast<double>(random_normal(seed, stream, i)) + shift;
  }
  return tensor_from(values, shape, dtype);
}

Tensor random_uniform_tensor(const Shape& shape, std::uint64_t seed, std::uint64_t stream,
                             double low, double high, DType dtype) {
  std::vector<double> values(static_cast<std::size_t>(shape_numel(shape)));
  for (std::size_t i = 0; i < values.size(); ++i) {
    values[i] = low + (high - low) * static_cast<double>(random_uniform(seed, stream, i));
  }
  return tensor_from(values, shape, dtype);
}

Tensor on_device(const Tensor& host, Device device) { return host.to(device); }

Tensor to_host(const Tensor& tensor) { return tensor.to(Device::cpu); }

Tensor as_f64(const Tensor& tensor) { return tensor.to(Device::cpu).to(DType::f64).contiguous(); }

Comparison compare(const Tensor& actual, const Tensor& reference) {
  const std::vector<double> actual_values = to_double_vector(actual);
  const std::vector<double> reference_values = to_double_vector(reference);
  Comparison comparison;
  const std::size_t count = std::min(actual_values.size(), reference_values.size());
  for (std::size_t i = 0; i < count; ++i) {
    const double value = actual_values[i];
    const double expected = reference_values[i];
    if (std::isnan(value)) {
      ++comparison.nan_count;
      continue;
    }
    if (std::isinf(expected) || std::isinf(value)) {
      if (value != expected) {
        ++comparison.infinity_mismatches;
      }
      continue;
    }
    comparison.max_abs_error = std::max(comparison.max_abs_error, std::abs(value - expected));
    comparison.max_abs_reference = std::max(comparison.max_abs_reference, std::abs(expected));
  }
  comparison.relative_error = comparison.max_abs_reference > 0.0
                                  ? comparison.max_abs_error / comparison.max_abs_reference
                                  : comparison.max_abs_error;
  return comparison;
}

double max_relative_error(const Tensor& actual, const Tensor& reference) {
  return compare(actual, reference).relative_error;
}

void expect_close(const std::string& what, const Tensor& actual, const Tensor& reference,
                  double tolerance) {
  ASSERT_EQ(actual.shape(), reference.shape()) << what << ": shape " << shape_string(actual.shape())
                                               << " against " << shape_string(reference.shape());
  const Comparison comparison = compare(actual, reference);
  EXPECT_EQ(comparison.nan_count, 0) << what << ": NaN in the result";
  EXPECT_EQ(comparison.infinity_mismatches, 0) << what << ": infinities differ from the reference";
  EXPECT_LE(comparison.relative_error, tolerance)
      << what << ": max|x - ref| = " << comparison.max_abs_error
      << ", max|ref| = " << comparison.max_abs_reference;
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) {
    return false;
  }
  const Tensor host_a = to_host(a).contiguous();
  const Tensor host_b = to_host(b).contiguous();
  return std::memcmp(host_a.raw_data(), host_b.raw_data(), host_a.bytes()) == 0;
}

std::vector<double> finite_difference_gradient(const Tensor& input,
                                               const std::function<double()>& loss, double step) {
  EXPECT_TRUE(input.dtype() == DType::f64 && input.device() == Device::cpu && input.is_contiguous())
      << "finite differences need a contiguous fp64 CPU tensor, got " << input.describe();
  double* values = input.data<double>();
  std::vector<double> gradient(static_cast<std::size_t>(input.numel()));
  for (std::size_t i = 0; i < gradient.size(); ++i) {
    const double saved = values[i];
    values[i] = saved + step;
    const double above = loss();
    values[i] = saved - step;
    const double below = loss();
    values[i] = saved;
    gradient[i] = (above - below) / (2.0 * step);
  }
  return gradient;
}

double weighted_sum(const Tensor& values, const Tensor& weights) {
  const std::vector<double> value_list = to_double_vector(values);
  const std::vector<double> weight_list = to_double_vector(weights);
  EXPECT_EQ(value_list.size(), weight_list.size());
  double sum = 0.0;
  for (std::size_t i = 0; i < std::min(value_list.size(), weight_list.size()); ++i) {
    if (weight_list[i] != 0.0) {
      sum += value_list[i] * weight_list[i];
    }
  }
  return sum;
}

void expect_gradient_matches(const std::string& what, const Tensor& analytic,
                             const std::vector<double>& numeric, double tolerance) {
  const std::vector<double> analytic_values = to_double_vector(analytic);
  ASSERT_EQ(analytic_values.size(), numeric.size()) << what;
  double max_error = 0.0;
  double max_numeric = 0.0;
  std::int64_t nan_count = 0;
  for (std::size_t i = 0; i < numeric.size(); ++i) {
    if (std::isnan(analytic_values[i]) || std::isnan(numeric[i])) {
      ++nan_count;
      continue;
    }
    max_error = std::max(max_error, std::abs(analytic_values[i] - numeric[i]));
    max_numeric = std::max(max_numeric, std::abs(numeric[i]));
  }
  EXPECT_EQ(nan_count, 0) << what << ": NaN in a gradient";
  const double relative = max_numeric > 0.0 ? max_error / max_numeric : max_error;
  EXPECT_LE(relative, tolerance) << what << ": max|analytic - numeric| = " << max_error
                                 << ", max|numeric| = " << max_numeric;
}

std::vector<KernelCasePtr> cases_for(Device device, const std::vector<KernelCasePtr>& cases) {
  std::vector<KernelCasePtr> selected;
  std::copy_if(
      cases.begin(), cases.end(), std::back_inserter(selected),
      [device](const KernelCasePtr& kernel_case) { return !kernel_case->dtypes(device).empty(); });
  return selected;
}

std::string case_name(const testing::TestParamInfo<KernelCasePtr>& info) {
  return info.param->name();
}

void PrintTo(const KernelCasePtr& kernel_case, std::ostream* stream) {
  *stream << kernel_case->name();
}

void run_backend_comparison(const KernelCase& kernel_case, Device device) {
  for (const DType dtype : kernel_case.dtypes(device)) {
    const std::string where =
        fmt::format("{} on {} in {}", kernel_case.name(), device_name(device), dtype_name(dtype));
    SCOPED_TRACE(where);
    ComputeContext context(kTestThreads);
    const auto start = std::chrono::steady_clock::now();
    const Results first = kernel_case.run(context, device, dtype);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const Results second = kernel_case.run(context, device, dtype);
    const Results expected = kernel_case.reference(dtype);
    ASSERT_EQ(first.size(), expected.size());
    ASSERT_EQ(second.size(), first.size());
    for (std::size_t i = 0; i < first.size(); ++i) {
      ASSERT_EQ(first[i].name, expected[i].name);
      expect_close(first[i].name, first[i].tensor, expected[i].tensor,
                   kernel_case.tolerance(dtype));
      EXPECT_TRUE(bitwise_equal(first[i].tensor, second[i].tensor))
          << first[i].name << ": a second run with the same inputs gave different bits";
    }
    kernel_case.check_properties(first);
    testing::Test::RecordProperty(fmt::format("gflops_{}", dtype_name(dtype)),
                                  fmt::format("{:.3f}", kernel_case.flops() / seconds * 1e-9));
  }
}

TEST_P(CpuBackend, MatchesReference) { run_backend_comparison(*GetParam(), Device::cpu); }

TEST_P(CudaBackend, MatchesReference) {
  if (cuda_device_count() == 0) {
    GTEST_SKIP() << "no GPU: " << cuda_unavailable_reason();
  }
  run_backend_comparison(*GetParam(), Device::cuda);
}

AttentionInputs random_attention_inputs(const Shape& query_shape, const Shape& key_shape,
                                        std::uint64_t seed, DType dtype, double qk_scale) {
  return {random_normal_tensor(query_shape, seed, 1, dtype, qk_scale),
          random_normal_tensor(key_shape, seed, 2, dtype, qk_scale),
          random_normal_tensor(key_shape, seed, 3, dtype),
          random_normal_tensor(query_shape, seed, 4, dtype)};
}

Results reference_attention(const AttentionInputs& in, const AttentionOptions& options) {
  const Tensor out = Tensor::empty(in.q.shape(), DType::f64);
  const Tensor lse = Tensor::empty({in.q.size(0), in.q.size(1), in.q.size(2)}, DType::f64);
  reference::attention_forward(in.q, in.k, in.v, options, out, lse);
  const Tensor grad_q = Tensor::empty(in.q.shape(), DType::f64);
  const Tensor grad_k = Tensor::empty(in.k.shape(), DType::f64);
  const Tensor grad_v = Tensor::empty(in.v.shape(), DType::f64);
  reference::attention_backward(in.q, in.k, in.v, in.grad_out, options, grad_q, grad_k, grad_v);
  return {{"out", out}, {"lse", lse}, {"grad_q", grad_q}, {"grad_k", grad_k}, {"grad_v", grad_v}};
}

double attention_flops(std::int64_t batch, std::int64_t query_heads, std::int64_t query_length,
                       std::int64_t key_length, std::int64_t head_dim, bool causal) {
  AttentionShape shape;
  shape.batch = batch;
  shape.query_heads = query_heads;
  shape.query_length = query_length;
  shape.key_length = key_length;
  shape.head_dim = head_dim;
  shape.causal = causal;
  return attention_forward_flops(shape) + attention_backward_flops(shape);
}

}  // namespace longseq::test
