// The CPU pieces of the exact causal product of rpe attention (kernels/rpe_attention.h,
// "Causal diagonal blocks"): moving the row blocks of one level of the split in and out of the
// batched Toeplitz product, and the direct masked leaves. CPU only for now: the CUDA twins would
// be declared with the other backend operations (kernels/backends.h) and stubbed in no_cuda.cpp.
#pragma once

#include <cstdint>

#include "runtime/context.h"
#include "runtime/tensor.h"

namespace longseq {

// `count` blocks of `rows` consecutive rows, block m starting at row first + m stride (rows
// outside [0, n) of the (B, G, n, F) side read as 0 and are dropped on the way back).
struct RpeRowBlocks {
  std::int64_t first = 0;
  std::int64_t stride = 0;
  std::int64_t count = 0;
  std::int64_t rows = 0;
};

namespace cpu {

// packed[b, g, r, m F + f] = rows[b, g, first + m stride + r, f]: packed (B, G, rows, count F),
// rows (B, G, n, F).
void rpe_gather_rows(ComputeContext& context, const RpeRowBlocks& blocks, const Tensor& rows,
                     const Tensor& packed);
// The transpose, accumulated: rows[b, g, first + m stride + r, f] += packed[b, g, r, m F + f].
void rpe_scatter_add_rows(ComputeContext& context, const RpeRowBlocks& blocks, const Tensor& packed,
                          const Tensor& rows);

// The diagonal leaves [l leaf, (l + 1) leaf) of the causal product, directly: with weights w
// (G, 2n - 1) (entry o + n - 1 for offset o = j - i) and x, y (B, G, n, F),
//   y[b, g, i, f] += sum_{leaf start <= j <= i} w[g, j - i + n - 1] x[b, g, j, f].
void rpe_causal_leaves(ComputeContext& context, std::int64_t leaf, const Tensor& weights,
                       const Tensor& x, const Tensor& y);
// Its backward, accumulated: grad_x (like x; may be undefined) and grad_weights (like weights;
// may be undefined, only the entries of offsets -(leaf - 1) .. 0 change).
void rpe_causal_leaves_backward(ComputeContext& context, std::int64_t leaf, const Tensor& weights,
                                const Tensor& x, const Tensor& grad_y, const Tensor& grad_x,
                                const Tensor& grad_weights);

}  // namespace cpu

}  // namespace longseq
