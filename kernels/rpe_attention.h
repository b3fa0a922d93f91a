// Kernelized attention with relative-position weights applied by FFT (Luo et al.; MECHANISMS.md
// section 6; the pointwise math in kernels/common/rpe_attention_math.h):
//
//   out_i = phi(q_i)^T sum_j c_{j-i} phi(k_j) v_j^T / max(phi(q_i)^T sum_j c_{j-i} phi(k_j), eps)
//
// with phi = elu + 1 and c_o = exp(b_o - max b) from 2N - 1 learned b per head (causal: offsets
// o > 0 weigh 0). The sums over j are Toeplitz products (kernels/toeplitz.h) of the columns
// phi_a(k_j) [v_j | 1]_e, Dk (Dv + 1) of them per head, done a block of features at a time so
// that memory stays O(N x block) per head, never O(N Dk Dv).
//
// The block functions serve the distributed form (a ring of key blocks, parallel/): queries at
// global positions [sq, sq + Nq) and keys at [sk, sk + Nk) form the block of the global Toeplitz
// matrix whose weights are entries [first, first + Nq + Nk - 1) of b, first = sk - sq - (Nq - 1)
// + N - 1 (rpe_block_first_entry). The augmented numerator num' = [num | den] of every query
// adds up over the key blocks; the readout divides once at the end.
//
// Causal diagonal blocks (queries and keys the same positions; the whole sequence on one rank):
// the fp32 FFT is accurate relative to the whole column, not row by row, so one FFT over the
// block would let future keys (weight exactly 0) reach past outputs through round-off, and rows
// near the start (few keys) would carry the round-off of the whole column. Instead the block is
// split in halves recursively: (first, first) and (second, second) recurse; (second half queries,
// first half keys) has every key in the past of every query: one block-Toeplitz product by FFT;
// below 32 positions the masked block is computed directly. No FFT holds a key after
// any of its queries: past outputs and gradients do not change, bit for bit, when future inputs
// do. Cost O(N log^2 N) (the pairs of one level share their offsets and go through one product).
// Pairs of distinct chunks are fully past (one FFT) or fully future (skipped by the caller).
// The split runs on the CPU only for now: causal diagonal blocks of CUDA tensors are refused
// (UserError) until its gather, scatter and leaf kernels have CUDA twins.
//
// Layouts (contiguous, fp32):
//   q, k          (B, H, Nq, Dk), (B, H, Nk, Dk)
//   v             (B, H, Nk, Dv)
//   out           (B, H, Nq, Dv)
//   b             (H, 2N - 1)    b[h, o + N - 1] for offset o = j - i
//   weights       (H, Nq + Nk - 1) the c of one block
//   numerator     (B, H, Nq, Dv + 1) num' = [num | den]
//   readout_grad  (B, H, Nq, Dv + 1) W' = dL/d num'
#pragma once

#include <cstdint>

#include "runtime/context.h"
#include "runtime/tensor.h"

namespace longseq {

struct RpeAttentionOptions {
  bool causal = false;
  float eps = 1e-6f;
};

// A block of the Dk (Dv + 1) product columns: features [first_feature, first_feature + features)
// times `width` value columns each (kernels/common/rpe_attention_math.h, rpe_column). With
// append_one the values tensor has width - 1 columns and the last one is 1 (v' = [v | 1]).
struct RpeColumnBlock {
  std::int64_t first_feature = 0;
  std::int64_t features = 0;
  std::int64_t width = 0;
  bool append_one = false;
};

// Entry of b where the weights of the block (queries from sq, Nq of them; keys from sk) begin.
std::int64_t rpe_block_first_entry(std::int64_t length, std::int64_t query_begin,
                                   std::int64_t query_count, std::int64_t key_begin);

// weights[h, e] = c at entry first + e of b (exp(b - m) with m the largest b in use of head h;
// 0 for causal offsets > 0).
void rpe_position_weights(ComputeContext& context, const Tensor& b, bool causal, std::int64_t first,
                          const Tensor& weights);
// grad_b[h, first + e] += grad_weights[h, e] weights[h, e] (through exp; m is held constant: the
// output does not depend on it).
void rpe_position_weights_backward(ComputeContext& context, const Tensor& weights,
                                   const Tensor& grad_weights, std::int64_t first,
                                   const Tensor& grad_b);

// full: one Toeplitz product for the pair (non-causal, or every key in the past).
// causal_diagonal: queries and keys are the same positions under causal weights (the split above).
enum class RpeBlockKind { full, causal_diagonal };

// numerator += the contribution of the key block (k, v) under `weights`.
void rpe_attention_block_forward(ComputeContext& context, const Tensor& q, const Tensor& k,
                                 const Tensor& v, const Tensor& weights, const Tensor& numerator,
                                 RpeBlockKind kind = RpeBlockKind::full);
// out = num / max(den, eps).
void rpe_attention_readout(ComputeContext& context, const Tensor& numerator, float eps,
                           const Tensor& out);
// readout_grad = W' from the global numerator and dL/d out.
void rpe_attention_readout_backward(ComputeContext& context, const Tensor& numerator,
                                    const Tensor& grad_out, float eps, const Tensor& readout_grad);
// Adds the key block's share of the gradients: grad_q, grad_k, grad_v, grad_weights (each may be
// undefined: not wanted; grad_k and grad_v together).
void rpe_attention_block_backward(ComputeContext& context, const Tensor& q, const Tensor& k,
                                  const Tensor& v, const Tensor& weights,
                                  const Tensor& readout_grad, const Tensor& grad_q,
                                  const Tensor& grad_k, const Tensor& grad_v,
                                  const Tensor& grad_weights,
                                  RpeBlockKind kind = RpeBlockKind::full);

// The whole sequence in one call (N = Nq = Nk): the one-rank form. grad_b is overwritten.
void rpe_attention_forward(ComputeContext& context, const Tensor& q, const Tensor& k,
                           const Tensor& v, const Tensor& b, const RpeAttentionOptions& options,
                           const Tensor& out);
void rpe_attention_backward(ComputeContext& context, const Tensor& q, const Tensor& k,
                            const Tensor& v, const Tensor& b, const Tensor& grad_out,
                            const RpeAttentionOptions& options, const Tensor& grad_q,
                            const Tensor& grad_k, const Tensor& grad_v, const Tensor& grad_b);

// Features per column block: the block's (B, H, N, features (Dv + 1)) buffers stay within a fixed
// budget (at least one feature).
std::int64_t rpe_feature_block(std::int64_t batch, std::int64_t heads, std::int64_t length,
                               std::int64_t key_dim, std::int64_t value_dim);

// FLOPs, per block pair: the Toeplitz products (kernels/toeplitz.h convention) of the Dk (Dv + 1)
// columns plus the feature maps and contractions, 2 per multiply-add: forward 2 Nk Dk (Dv + 1)
// (building the columns) + 2 Nq Dk (Dv + 1) (contracting them with phi(q)); backward the
// recomputed product, the transposed product with grad_t, and 3 x 2 Dk (Dv + 1) (Nq + Nk).
double rpe_attention_block_forward_flops(std::int64_t batch, std::int64_t heads,
                                         std::int64_t query_length, std::int64_t key_length,
                                         std::int64_t key_dim, std::int64_t value_dim);
double rpe_attention_block_backward_flops(std::int64_t batch, std::int64_t heads,
                                          std::int64_t query_length, std::int64_t key_length,
                                          std::int64_t key_dim, std::int64_t value_dim);

namespace reference {

// Direct O(N^2) double loops of rpe attention for the whole sequence; CPU tensors of any floating
// dtype. grad_* may be undefined.
void rpe_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& b,
                           const RpeAttentionOptions& options, const Tensor& out,
                           const Tensor& denominator);
void rpe_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& b,
                            const Tensor& grad_out, const RpeAttentionOptions& options,
                            const Tensor& grad_q, const Tensor& grad_k, const Tensor& grad_v,
                            const Tensor& grad_b);

}  // namespace reference

}  // namespace longseq
