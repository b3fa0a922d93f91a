// Linear attention with the elu + 1 feature map (Katharopoulos et al.; MECHANISMS.md section 3).
//
//   causal      out_i = phi(q_i)^T S_i / (phi(q_i)^T z_i + eps),
//               S_i = S_in + sum_{j <= i} phi(k_j) v_j^T,   z_i = z_in + sum_{j <= i} phi(k_j)
//   non-causal  the same with S_i, z_i replaced by the full sums S_in + sum_j ..., z_in + sum_j ...
//
// (S_in, z_in) is the state of everything outside the call that its queries see: for a shard of
// a causal sequence the sum over the positions before it, for a non-causal one the sum over every
// other position. The final state is S_in + sum_j phi(k_j) v_j^T (and z likewise) in both modes,
// so shards chain: one shard's final state is the next one's initial state.
//
// Layouts (contiguous):
//   q, k            (B, H, N, Dk)
//   v, out          (B, H, N, Dv)      out has the dtype of q
//   state.s         (B, H, Dk, Dv) fp32
//   state.z         (B, H, Dk) fp32
// CPU: fp32. CUDA: fp32, bf16 and fp16 inputs; state and accumulation always fp32.
#pragma once

#include <cstdint>

#include "runtime/context.h"
#include "runtime/tensor.h"

namespace longseq {

struct LinearAttentionOptions {
  bool causal = false;
  float eps = 1e-6f;
};

// A recurrent state (S, z); undefined tensors stand for the zero state (as an input) or for "not
// wanted" (as an output). Gradients w.r.t. a state have the same layout.
struct LinearAttentionState {
  Tensor s;  // (B, H, Dk, Dv) fp32
  Tensor z;  // (B, H, Dk) fp32

  [[nodiscard]] bool defined() const { return s.defined(); }
};

// The geometry of one call, checked and resolved once by the dispatcher.
struct LinearAttentionShape {
  std::int64_t batch = 0;
  std::int64_t heads = 0;
  std::int64_t length = 0;
  std::int64_t key_dim = 0;
  std::int64_t value_dim = 0;
  bool causal = false;
  float eps = 0.0f;
};

// out (may be undefined: then only `final` is computed, the summary of a shard); initial (may be
// undefined: zero); final (may be undefined: not wanted).
void linear_attention_forward(ComputeContext& context, const Tensor& q, const Tensor& k,
                              const Tensor& v, const LinearAttentionOptions& options,
                              const LinearAttentionState& initial, const Tensor& out,
                              const LinearAttentionState& final);

// Backward of linear_attention_forward with the same q, k, v, options and initial state, without
// storing per-position states: a forward scan rebuilds S_i for dQ, a reverse scan of
// R_j = R_out + sum_{i >= j} phi(q_i) (dL/d num_i)^T (and r likewise) gives dK and dV.
//   grad_final    dL/d final state (from later shards); undefined: zero
//   grad_q        like q; grad_k like k; grad_v like v (overwritten). grad_q, or grad_k and grad_v
//                 together, may be undefined: not wanted.
//   grad_initial  dL/d initial state (what the previous shard receives); undefined: not wanted.
void linear_attention_backward(ComputeContext& context, const Tensor& q, const Tensor& k,
                               const Tensor& v, const Tensor& grad_out,
                               const LinearAttentionOptions& options,
                               const LinearAttentionState& initial,
                               const LinearAttentionState& grad_final, const Tensor& grad_q,
                               const Tensor& grad_k, const Tensor& grad_v,
                               const LinearAttentionState& grad_initial);

// One step of causal generation: state += phi(k) v^T (z += phi(k)), then
// out = phi(q)^T S / (phi(q)^T z + eps) with the updated state.
//   q, k (B, H, Dk); v, out (B, H, Dv); state updated in place.
void linear_attention_step(ComputeContext& context, const Tensor& q, const Tensor& k,
                           const Tensor& v, float eps, const LinearAttentionState& state,
                           const Tensor& out);

// Positions per chunk of the chunked CPU algorithm: within a chunk the masked quadratic product,
// across chunks the state.
inline constexpr std::int64_t kLinearAttentionChunk = 64;

// FLOP conventions: the matrix products the chunked algorithm performs, 2 m n k each, over
// unpadded dimensions, with C = kLinearAttentionChunk, per (batch, head):
//   causal forward       2 N (C (Dk + Dv) + 2 Dk Dv)   (chunk scores, their product with V,
//                                                       readout of the state, state update)
//   causal backward      4 N (2 C (Dk + Dv) + 3 Dk Dv)
//   non-causal forward   4 N Dk Dv;   non-causal backward 12 N Dk Dv
double linear_attention_forward_flops(const LinearAttentionShape& shape);
double linear_attention_backward_flops(const LinearAttentionShape& shape);

}  // namespace longseq
