// Softmax attention with the score matrix materialised (cuBLAS products + row kernels), processed
// in chunks of query rows: the memory baseline (one chunk of all rows), and the fp32 path of
// flash attention (chunks sized to bound the workspace). Exact fp32 products (no TF32).
#pragma once

#include "kernels/attention.h"

namespace longseq::cuda {

void materialised_attention_forward(ComputeContext& context, const AttentionShape& shape,
                                    const AttentionOptions& options, const Tensor& q,
                                    const Tensor& k, const Tensor& v, const Tensor& out,
                                    const Tensor& lse, long long query_chunk);

void materialised_attention_backward(ComputeContext& context, const AttentionShape& shape,
                                     const AttentionOptions& options, const Tensor& q,
                                     const Tensor& k, const Tensor& v, const Tensor& out,
                                     const Tensor& lse, const Tensor& grad_out,
                                     const Tensor& grad_q, const Tensor& grad_k,
                                     const Tensor& grad_v, long long query_chunk);

}  // namespace longseq::cuda
