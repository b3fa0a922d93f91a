// The backend-comparison harness of the kernel tests (after ggml's tests/test-backend-ops.cpp).
//
// A case is a class deriving from KernelCase: it knows its shapes, the dtypes it is checked in on
// each device, its tolerance and FLOP count, how to run the operations under test (forward and
// backward) on a device, and how to run the reference on the same inputs. The harness runs every
// case on the CPU and, when a GPU is present, on CUDA; it compares every result against the
// reference, checks for NaN, and checks that a second run gives the same bits.
//
// How to add an operation: write a case class in tests/kernels/<op>_test.cpp, list its instances
// in a function, and instantiate both backends:
//   INSTANTIATE_TEST_SUITE_P(Op, CpuBackend, testing::ValuesIn(cases_for(Device::cpu, op_cases())),
//   case_name); INSTANTIATE_TEST_SUITE_P(Op, CudaBackend, testing::ValuesIn(cases_for(Device::cuda,
//   op_cases())), case_name);
// Test names of CUDA tests contain "Cuda" and CPU test names never do: CTest splits them by that.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "kernels/attention.h"
#include "runtime/context.h"
#include "runtime/tensor.h"

namespace longseq::test {

// CPU threads of every ComputeContext in these tests: fixed, so that two runs must give the same
// bits.
inline constexpr int kTestThreads = 2;

// Max relative error accepted against the reference for inputs of `dtype`: 1e-5 for fp32 and
// fp64; for the 16-bit types the fixed tolerances of MECHANISMS.md (2e-2 bf16, 5e-3 fp16),
// measured against a reference computed from the same rounded inputs.
double default_tolerance(DType dtype);

// ---- deterministic inputs (Philox: the values depend only on seed, stream and index)

// Standard normals times `scale` plus `shift`, rounded to `dtype`; a contiguous CPU tensor.
Tensor random_normal_tensor(const Shape& shape, std::uint64_t seed, std::uint64_t stream,
                            DType dtype = DType::f32, double scale = 1.0, double shift = 0.0);
// Uniform in (low, high], rounded to `dtype`.
Tensor random_uniform_tensor(const Shape& shape, std::uint64_t seed, std::uint64_t stream,
                             double low, double high, DType dtype = DType::f32);
// A contiguous CPU tensor of `dtype` holding `values` (row-major).
Tensor tensor_from(const std::vector<double>& values, const Shape& shape, DType dtype = DType::f64);

// ---- comparison

struct Comparison {
  double max_abs_error = 0.0;      // over elements where the reference is finite
  double max_abs_reference = 0.0;  // over finite reference elements
  // max|actual - reference| / max|reference|; the absolute error when the reference is all 0.
  double relative_error = 0.0;
  std::int64_t nan_count = 0;  // NaN in `actual`
  // Elements where one side is infinite and the other is not (or the signs differ).
  std::int64_t infinity_mismatches = 0;
};

Comparison compare(const Tensor& actual, const Tensor& reference);
double max_relative_error(const Tensor& actual, const Tensor& reference);
// Asserts same shape, no NaN, infinities where the reference has them, relative error <= tolerance.
void expect_close(const std::string& what, const Tensor& actual, const Tensor& reference,
                  double tolerance);
bool bitwise_equal(const Tensor& a, const Tensor& b);

// ---- finite differences (fp64)

// Central differences (loss(x + h e_i) - loss(x - h e_i)) / 2h for every element i of `input`, a
// contiguous fp64 CPU tensor that `loss` reads; each element is restored after its probe.
std::vector<double> finite_difference_gradient(const Tensor& input,
                                               const std::function<double()>& loss,
                                               double step = 1e-5);
// sum(values * weights), skipping zero weights (so that -inf values under weight 0 are allowed).
double weighted_sum(const Tensor& values, const Tensor& weights);
// Asserts max|analytic - numeric| / max|numeric| <= tolerance (absolute when numeric is all 0).
void expect_gradient_matches(const std::string& what, const Tensor& analytic,
                             const std::vector<double>& numeric, double tolerance);

// ---- the harness

struct NamedTensor {
  std::string name;
  Tensor tensor;  // on the CPU
};
using Results = std::vector<NamedTensor>;

class KernelCase {
 public:
  virtual ~KernelCase() = default;
  // Part of the test name: letters, digits and underscores.
  [[nodiscard]] virtual std::string name() const = 0;
  // Input dtypes this case is checked in on `device`; empty when the backend does not support it.
  [[nodiscard]] virtual std::vector<DType> dtypes(Device device) const = 0;
  [[nodiscard]] virtual double tolerance(DType dtype) const { return default_tolerance(dtype); }
  // Floating-point operations of one run (forward and backward together).
  [[nodiscard]] virtual double flops() const = 0;
  // Runs the operations under test on `device` with inputs rounded to `dtype`; results on the CPU.
  [[nodiscard]] virtual Results run(ComputeContext& context, Device device, DType dtype) const = 0;
  // The reference on the same inputs: the same names in the same order, as fp64 tensors.
  [[nodiscard]] virtual Results reference(DType dtype) const = 0;
  // Properties beyond closeness (exact zeros, -inf, ...) of the results of run().
  virtual void check_properties(const Results& results) const { static_cast<void>(results); }
};

using KernelCasePtr = std::shared_ptr<const KernelCase>;

// The cases that have at least one dtype on `device`.
std::vector<KernelCasePtr> cases_for(Device device, const std::vector<KernelCasePtr>& cases);
std::string case_name(const testing::TestParamInfo<KernelCasePtr>& info);
void PrintTo(const KernelCasePtr& kernel_case, std::ostream* stream);

// Runs `kernel_case` on `device` in each of its dtypes and checks it against the reference.
void run_backend_comparison(const KernelCase& kernel_case, Device device);

// Copies inputs to where the operation runs; copies results back.
Tensor on_device(const Tensor& host, Device device);
Tensor to_host(const Tensor& tensor);

// A CPU copy of `tensor` as fp64.
Tensor as_f64(const Tensor& tensor);

// ---- attention inputs and reference (the attention and merge tests)

struct AttentionInputs {
  Tensor q;         // (B, Hq, Nq, D)
  Tensor k;         // (B, Hkv, Nk, D)
  Tensor v;         // (B, Hkv, Nk, D)
  Tensor grad_out;  // (B, Hq, Nq, D)
};

// Standard normals from `seed` (streams 1 to 4 for q, k, v, grad_out), q and k times `qk_scale`.
AttentionInputs random_attention_inputs(const Shape& query_shape, const Shape& key_shape,
                                        std::uint64_t seed, DType dtype, double qk_scale = 1.0);

// The reference forward and backward on `in`: out, lse, grad_q, grad_k, grad_v in fp64.
Results reference_attention(const AttentionInputs& in, const AttentionOptions& options);

// FLOPs of one forward and one backward call (kernels/attention.h conventions).
double attention_flops(std::int64_t batch, std::int64_t query_heads, std::int64_t query_length,
                       std::int64_t key_length, std::int64_t head_dim, bool causal);

class CpuBackend : public testing::TestWithParam<KernelCasePtr> {};
class CudaBackend : public testing::TestWithParam<KernelCasePtr> {};

}  // namespace longseq::test
