// cuda::gemm: cuBLAS products of row-major (batched) matrices; the dispatcher (kernels/gemm.cpp)
// has checked shapes, dtypes and contiguity.
#include "kernels/backends.h"
#include "kernels/cuda/cublas_gemm.cuh"
#include "kernels/cuda/element.cuh"
#include "runtime/cuda/resources.h"

namespace longseq::cuda {

void gemm(ComputeContext& context, const Tensor& a, bool transpose_a, const Tensor& b,
          bool transpose_b, const Tensor& c, float alpha, float beta) {
  // a (batch?, a_rows, a_columns), b (batch?, b_rows, b_columns), c (batch?, rows, columns)
  const std::int64_t batch = c.rank() == 3 ? c.size(0) : 1;
  const std::int64_t rows = c.size(-2);
  const std::int64_t columns = c.size(-1);
  const std::int64_t depth = transpose_a ? a.size(-2) : a.size(-1);
  const std::int64_t a_stride = a.size(-2) * a.size(-1);
  const std::int64_t b_stride = b.size(-2) * b.size(-1);
  const RowMajorMatrix a_matrix{a.raw_data(), cublas_type(a.dtype()), a.size(-1), a_stride};
  const RowMajorMatrix b_matrix{b.raw_data(), cublas_type(b.dtype()), b.size(-1), b_stride};
  const RowMajorOutput c_matrix{c.raw_data(), cublas_type(c.dtype()), columns, rows * columns};
  gemm_row_major(context.cuda().cublas(), rows, columns, depth, alpha, a_matrix, transpose_a,
                 b_matrix, transpose_b, beta, c_matrix, batch);
}

}  // namespace longseq::cuda
