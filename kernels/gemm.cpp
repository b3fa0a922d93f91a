#include "kernels/gemm.h"

#include "kernels/backends.h"
#include "kernels/tensor_checks.h"

namespace longseq {

void gemm(ComputeContext& context, const Tensor& a, bool transpose_a, const Tensor& b,
          bool transpose_b, const Tensor& c, float alpha, float beta) {
  LONGSEQ_CHECK((a.rank() == 2 || a.rank() == 3) && b.rank() == a.rank() && c.rank() == a.rank(),
                "[gemm] a, b, c must all be 2-D matrices or all 3-D batches, got {}, {}, {}",
                a.describe(), b.describe(), c.describe());
  LONGSEQ_CHECK(a.is_contiguous() && b.is_contiguous() && c.is_contiguous(),
                "[gemm] a, b, c must be contiguous, got {}, {}, {}", a.describe(), b.describe(),
                c.describe());
  LONGSEQ_CHECK(a.device() == c.device() && b.device() == c.device(),
                "[gemm] a, b, c must be on one device, got {}, {}, {}", a.describe(), b.describe(),
                c.describe());
  if (a.rank() == 3) {
    LONGSEQ_CHECK(a.size(0) == c.size(0) && b.size(0) == c.size(0),
                  "[gemm] batch sizes differ: {}, {}, {}", a.describe(), b.describe(),
                  c.describe());
  }
  // op(a) is (rows x depth), op(b) is (depth x columns), c is (rows x columns).
  const std::int64_t rows = transpose_a ? a.size(-1) : a.size(-2);
  const std::int64_t depth = transpose_a ? a.size(-2) : a.size(-1);
  const std::int64_t b_depth = transpose_b ? b.size(-1) : b.size(-2);
  const std::int64_t columns = transpose_b ? b.size(-2) : b.size(-1);
  LONGSEQ_CHECK(depth == b_depth,
                "[gemm] inner dimensions differ: op(a) is {} x {}, op(b) is {} x {}", rows, depth,
                b_depth, columns);
  LONGSEQ_CHECK(c.size(-2) == rows && c.size(-1) == columns, "[gemm] c must be {} x {}, got {}",
                rows, columns, c.describe());
  LONGSEQ_CHECK(a.dtype() == b.dtype(), "[gemm] a and b must have one dtype, got {} and {}",
                dtype_name(a.dtype()), dtype_name(b.dtype()));
  if (c.device() == Device::cpu) {
    LONGSEQ_CHECK(a.dtype() == DType::f32 && c.dtype() == DType::f32,
                  "[gemm] the CPU implementation takes fp32, got {} inputs and {} output",
                  dtype_name(a.dtype()), dtype_name(c.dtype()));
    cpu::gemm(context, a, transpose_a, b, transpose_b, c, alpha, beta);
  } else {
    LONGSEQ_CHECK(is_fp32_bf16_or_fp16(a.dtype()),
                  "[gemm] the CUDA implementation takes fp32, bf16 or fp16 inputs, got {}",
                  dtype_name(a.dtype()));
    LONGSEQ_CHECK(c.dtype() == a.dtype() || c.dtype() == DType::f32,
                  "[gemm] c must be fp32 or the input dtype {}, got {}", dtype_name(a.dtype()),
                  dtype_name(c.dtype()));
    cuda::gemm(context, a, transpose_a, b, transpose_b, c, alpha, beta);
  }
}

}  // namespace longseq
