// Row-major matrix products on cuBLAS (which is column-major).
//
// A row-major matrix X with leading dimension ld is, read column-major with the same ld, X^T.
// So row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: cuBLAS gets B first with
// B's transpose flag, then A with A's, and the dimensions (columns, rows, depth).
#pragma once

#include <cublas_v2.h>

#include <algorithm>
#include <cstdint>
#include <limits>

#include "runtime/cuda/check.h"

namespace longseq::cuda {

// One operand of a (batched) row-major product: `ld` elements between rows, `batch_stride`
// elements between consecutive matrices of the batch (0 broadcasts one matrix to every entry).
struct RowMajorMatrix {
  const void* data = nullptr;
  cudaDataType_t type = CUDA_R_32F;
  std::int64_t ld = 0;
  std::int64_t batch_stride = 0;
};

struct RowMajorOutput {
  void* data = nullptr;
  cudaDataType_t type = CUDA_R_32F;
  std::int64_t ld = 0;
  std::int64_t batch_stride = 0;
};

inline int checked_int(std::int64_t value, const char* what) {
  LONGSEQ_CHECK(value >= 0 && value <= std::numeric_limits<int>::max(),
                "[gemm] {} = {} does not fit cuBLAS's int", what, value);
  return static_cast<int>(value);
}

// c (rows x columns) = alpha op(a) op(b) + beta c for each of `batch` entries, fp32 accumulation.
// op(a) is (rows x depth), op(b) is (depth x columns).
inline void gemm_row_major(cublasHandle_t handle, std::int64_t rows, std::int64_t columns,
                           std::int64_t depth, float alpha, const RowMajorMatrix& a,
                           bool transpose_a, const RowMajorMatrix& b, bool transpose_b, float beta,
                           const RowMajorOutput& c, std::int64_t batch) {
  if (rows == 0 || columns == 0 || batch == 0) {
    return;
  }
  // cuBLAS wants ld >= 1 even where a row is empty (depth 0).
  const auto ld = [](std::int64_t value) {
    return checked_int(std::max<std::int64_t>(1, value), "ld");
  };
  CUBLAS_CHECK(cublasGemmStridedBatchedEx(
      handle, transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N, transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N,
      checked_int(columns, "columns"), checked_int(rows, "rows"), checked_int(depth, "depth"),
      &alpha, b.data, b.type, ld(b.ld), b.batch_stride, a.data, a.type, ld(a.ld), a.batch_stride,
      &beta, c.data, c.type, ld(c.ld), c.batch_stride, checked_int(batch, "batch"),
      CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

}  // namespace longseq::cuda
