// Momentum Transformer attention with the elu + 1 feature map (Nguyen et al.; MECHANISMS.md
// section 4). Causal only: momentum accumulates along the sequence, so it has no non-causal form.
//
// The paper's recurrence, with phi = elu + 1, momentum mu and step gamma:
//   P_i = mu P_{i-1} - gamma phi(k_i) v_i^T,   S_i = S_{i-1} - P_i,   z_i = z_{i-1} + phi(k_i)
//   out_i = phi(q_i)^T S_i / (phi(q_i)^T z_i + eps)                (no momentum in the normaliser)
// Unrolled, key j reaches query i >= j with weight gamma (1 + mu + ... + mu^(i-j)) =
// gamma (1 - mu^(i-j+1)) / (1 - mu), so S_i = a (C_i - mu D_i) with a = gamma / (1 - mu) and two
// causal sums that the kernels carry as the state:
//   C_i = C_in + sum_{j <= i} phi(k_j) v_j^T                      (plain)
//   D_i = mu D_{i-1} + phi(k_i) v_i^T,  D_{-1} = D_in             (decayed by mu per position)
//   z_i = z_in + sum_{j <= i} phi(k_j)
// The weight depends only on i - j, never on the sequence length, so a prefix computes the same
// outputs as the whole sequence and the recurrent form agrees with the parallel one. mu = 0,
// gamma = 1 is linear attention (kernels/linear_attention.h). Requires 0 <= mu < 1.
//
// A shard hands (C, D, z) on: the final state is (C_in + sum_j phi(k_j) v_j^T,
// mu^N D_in + sum_j mu^(N-1-j) phi(k_j) v_j^T, z_in + sum_j phi(k_j)), an affine map of the
// initial state (parallel/momentum_attention_parallel.h scans it across ranks).
//
// Layouts (contiguous):
//   q, k            (B, H, N, Dk)
//   v, out          (B, H, N, Dv)      out has the dtype of q
//   state.c, .d     (B, H, Dk, Dv) fp32
//   state.z         (B, H, Dk) fp32
// CPU: fp32. CUDA: fp32, bf16 and fp16 inputs; state and accumulation always fp32.
#pragma once

#include <cstdint>

#include "runtime/context.h"
#include "runtime/tensor.h"

namespace longseq {

struct MomentumAttentionOptions {
  float momentum = 0.5f;  // mu, in [0, 1)
  float step = 0.8f;      // gamma
  float eps = 1e-6f;
};

// A recurrent state (C, D, z); undefined tensors stand for the zero state (as an input) or for
// "not wanted" (as an output). Gradients w.r.t. a state have the same layout.
struct MomentumAttentionState {
  Tensor c;  // (B, H, Dk, Dv) fp32
  Tensor d;  // (B, H, Dk, Dv) fp32
  Tensor z;  // (B, H, Dk) fp32

  [[nodiscard]] bool defined() const { return c.defined(); }
};

// The geometry of one call, checked and resolved once by the dispatcher.
struct MomentumAttentionShape {
  std::int64_t batch = 0;
  std::int64_t heads = 0;
  std::int64_t length = 0;
  std::int64_t key_dim = 0;
  std::int64_t value_dim = 0;
  float momentum = 0.0f;
  float step = 0.0f;
  float eps = 0.0f;
};

// out (may be undefined: then only `final` is computed, the summary of a shard); initial (may be
// undefined: zero); final (may be undefined: not wanted).
void momentum_attention_forward(ComputeContext& context, const Tensor& q, const Tensor& k,
                                const Tensor& v, const MomentumAttentionOptions& options,
                                const MomentumAttentionState& initial, const Tensor& out,
                                const MomentumAttentionState& final);

// Backward of momentum_attention_forward with the same q, k, v, options and initial state, without
// storing per-position states: a forward scan rebuilds (C_i, D_i, z_i) for dQ; a reverse scan of
// the gradients of the states (the C and z parts summed, the D part decayed by mu per position
// going backwards) gives dK and dV.
//   grad_final    dL/d final state (from later shards); undefined: zero
//   grad_q        like q; grad_k like k; grad_v like v (overwritten). grad_q, or grad_k and grad_v
//                 together, may be undefined: not wanted.
//   grad_initial  dL/d initial state (what the previous shard receives); undefined: not wanted.
void momentum_attention_backward(ComputeContext& context, const Tensor& q, const Tensor& k,
                                 const Tensor& v, const Tensor& grad_out,
                                 const MomentumAttentionOptions& options,
                                 const MomentumAttentionState& initial,
                                 const MomentumAttentionState& grad_final, const Tensor& grad_q,
                                 const Tensor& grad_k, const Tensor& grad_v,
                                 const MomentumAttentionState& grad_initial);

// One step of causal generation: C += phi(k) v^T, D = mu D + phi(k) v^T, z += phi(k), then
// out = phi(q)^T a (C - mu D) / (phi(q)^T z + eps) with the updated state.
//   q, k (B, H, Dk); v, out (B, H, Dv); state updated in place.
void momentum_attention_step(ComputeContext& context, const Tensor& q, const Tensor& k,
                             const Tensor& v, const MomentumAttentionOptions& options,
                             const MomentumAttentionState& state, const Tensor& out);

// Positions per chunk of the chunked CPU algorithm: within a chunk the masked quadratic products
// weighted by gamma (1 - mu^(i-j+1)) / (1 - mu), across chunks the state.
inline constexpr std::int64_t kMomentumAttentionChunk = 64;

// FLOP conventions: the matrix products the chunked algorithm performs, 2 m n k each, over
// unpadded dimensions, with C = kMomentumAttentionChunk, per (batch, head):
//   forward    2 N (C (Dk + Dv) + 4 Dk Dv)   (chunk scores, their weighted product with V,
//                                            readouts of C and D, updates of C and D)
//   backward   4 N (2 C (Dk + Dv) + 6 Dk Dv)
double momentum_attention_forward_flops(const MomentumAttentionShape& shape);
double momentum_attention_backward_flops(const MomentumAttentionShape& shape);

}  // namespace longseq
