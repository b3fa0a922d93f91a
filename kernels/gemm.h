// Matrix products: OpenBLAS sgemm on the CPU (the CPU yardstick), cuBLAS on the GPU.
#pragma once

#include <string>

#include "runtime/context.h"
#include "runtime/tensor.h"

namespace longseq {

// c = alpha * op(a) * op(b) + beta * c, op(x) = x or x^T. a, b, c are contiguous 2-D matrices,
// or 3-D batches (batch, rows, columns) with the same batch size. CPU: fp32. CUDA: fp32, or bf16 /
// fp16 inputs with fp32 accumulation and c in the input type or fp32.
void gemm(ComputeContext& context, const Tensor& a, bool transpose_a, const Tensor& b,
          bool transpose_b, const Tensor& c, float alpha = 1.0f, float beta = 0.0f);

}  // namespace longseq

namespace longseq {

// The CPU BLAS in use and how it was built, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH ... (2 threads)".
std::string cpu_blas_description();

}  // namespace longseq
