// Row-wise kernels shared by the CUDA attention implementations (launchers; stream-ordered).
#pragma once

#include <cuda_runtime.h>

#include "kernels/cuda/attention_mask.cuh"
#include "runtime/dtype.h"

namespace longseq::cuda {

// delta (rows) = rowsum(grad_out * out) in fp32; out and grad_out are (rows, head_dim) of `dtype`.
void launch_attention_delta(DType dtype, const void* out, const void* grad_out, float* delta,
                            long long rows, int head_dim, cudaStream_t stream);

// The query rows [first_query, first_query + chunk_rows) of every (batch, head) of a materialised
// attention call: score buffers are (B * Hq, chunk_rows, Nk), LSE and delta (B * Hq, Nq).
struct ScoreChunk {
  long long heads = 0;  // B * Hq
  long long first_query = 0;
  long long chunk_rows = 0;
};

// probabilities = softmax of each masked row of scores (already scaled), in `dtype`; writes the
// rows' LSE. A row that sees no key gets probabilities 0 and LSE -inf.
void launch_masked_softmax_rows(DType dtype, const float* scores, void* probabilities, float* lse,
                                const ScoreChunk& chunk, const AttentionMask& mask,
                                cudaStream_t stream);

// From the scaled scores S and dP = dO V^T of a chunk: probabilities P = exp(S - LSE) (0 where
// masked) and score gradients scale * P * (dP - delta), both in `dtype`.
void launch_score_gradients(DType dtype, const float* scores, const float* grad_probabilities,
                            const float* lse, const float* delta, float scale, void* probabilities,
                            void* grad_scores, const ScoreChunk& chunk, const AttentionMask& mask,
                            cudaStream_t stream);

// destination (count, `dtype`) = source (count, fp32).
void launch_convert_from_float(DType dtype, const float* source, void* destination, long long count,
                               cudaStream_t stream);

}  // namespace longseq::cuda
