// cpu::gemm: OpenBLAS sgemm on row-major fp32 matrices, one call per batch entry. The dispatcher
// (kernels/gemm.cpp) has checked shapes, dtypes and contiguity.
#include <cblas.h>

#include <algorithm>
#include <limits>

#include "kernels/backends.h"

namespace longseq::cpu {

namespace {

blasint blas_int(std::int64_t value) {
  LONGSEQ_CHECK(value >= 0 && value <= std::numeric_limits<blasint>::max(),
                "[gemm] dimension {} does not fit the BLAS integer", value);
  return static_cast<blasint>(value);
}

}  // namespace

void gemm(ComputeContext& /*context*/, const Tensor& a, bool transpose_a, const Tensor& b,
          bool transpose_b, const Tensor& c, float alpha, float beta) {
  // a (batch?, a_rows, a_columns), b (batch?, b_rows, b_columns), c (batch?, rows, columns)
  const std::int64_t batch = c.rank() == 3 ? c.size(0) : 1;
  const std::int64_t rows = c.size(-2);
  const std::int64_t columns = c.size(-1);
  const std::int64_t depth = transpose_a ? a.size(-2) : a.size(-1);
  if (rows == 0 || columns == 0) {
    return;
  }
  const std::int64_t a_stride = a.size(-2) * a.size(-1);
  const std::int64_t b_stride = b.size(-2) * b.size(-1);
  const float* a_data = a.data<float>();
  const float* b_data = b.data<float>();
  float* c_data = c.data<float>();
  for (std::int64_t entry = 0; entry < batch; ++entry) {
    // BLAS wants ld >= 1 even for empty operands.
    cblas_sgemm(CblasRowMajor, transpose_a ? CblasTrans : CblasNoTrans,
                transpose_b ? CblasTrans : CblasNoTrans, blas_int(rows), blas_int(columns),
                blas_int(depth), alpha, a_data + entry * a_stride,
                blas_int(std::max<std::int64_t>(1, a.size(-1))), b_data + entry * b_stride,
                blas_int(std::max<std::int64_t>(1, b.size(-1))), beta,
                c_data + entry * rows * columns, blas_int(columns));
  }
}

}  // namespace longseq::cpu
