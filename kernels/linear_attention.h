// Linear attention (Katharopoulos et al.; MECHANISMS.md section 3) with the elu + 1 feature map, or
// with features computed by the caller (Performer, MECHANISMS.md section 5).
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
// Feature maps: phi = elu + 1 applied to q and k, or the identity (q and k are already features,
// positive, with Dk = the number of features).
//
// Key log scales (optional, for features too large or small for fp32 as they are): the key
// feature of position j is exp(c_j) phi(k_j), with c_j = key_log_scale[j]. A state then carries a
// log scale too: it stands for exp(m) (S, z). The kernels keep a running max of the log scales:
// before each chunk of keys, M = max(m, max_j c_j in the chunk); the state is rescaled by
// exp(m - M) and the keys weighted by exp(c_j - M) <= 1, so nothing overflows. Log scales require
// eps = 0: then out_i is a ratio in which every such rescaling cancels, so results are the same
// for every chunking and every split of the sequence (up to rounding). A denominator that is
// exactly 0 (every visible feature product underflowed) gives out_i = 0 instead of a NaN.
//
// Layouts (contiguous):
//   q, k            (B, H, N, Dk)
//   v, out          (B, H, N, Dv)      out has the dtype of q
//   state.s         (B, H, Dk, Dv) fp32
//   state.z         (B, H, Dk) fp32
//   state.log_scale (B, H) fp32, with key log scales only
//   key_log_scale   (B, H, N) fp32
// CPU: fp32. CUDA: fp32, bf16 and fp16 inputs; state and accumulation always fp32.
#pragma once

#include <cstdint>

#include "runtime/context.h"
#include "runtime/tensor.h"

namespace longseq {

enum class LinearAttentionFeatureMap : std::uint8_t { elu_plus_one, identity };

struct LinearAttentionOptions {
  bool causal = false;
  // >= 0; must be 0 with key log scales.
  float eps = 1e-6f;
  LinearAttentionFeatureMap feature_map = LinearAttentionFeatureMap::elu_plus_one;
  // Undefined: no log scales (every c_j = 0, states without log_scale). In
  // linear_attention_step: (B, H), the log scale of the one key.
  Tensor key_log_scale;
};

// A recurrent state exp(log_scale) (S, z); undefined tensors stand for the zero state (as an
// input) or for "not wanted" (as an output). Gradients w.r.t. a state have the same layout and
// meaning: the gradient w.r.t. the true state exp(m) (S, z) is exp(log_scale) (s, z). log_scale is
// defined exactly when the call has key log scales; the zero state has log_scale -inf.
struct LinearAttentionState {
  Tensor s;          // (B, H, Dk, Dv) fp32
  Tensor z;          // (B, H, Dk) fp32
  Tensor log_scale;  // (B, H) fp32, or undefined

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
  LinearAttentionFeatureMap feature_map = LinearAttentionFeatureMap::elu_plus_one;
  bool key_log_scale = false;
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
//                 together, may be undefined: not wanted. With the identity feature map and key
//                 log scales, grad_k is dL/d phi(k_j) with c_j held fixed; dL/dc_j, if wanted, is
//                 grad_k_j . phi(k_j) (the Performer's stabiliser needs none: it cancels).
//   grad_initial  dL/d initial state (what the previous shard receives); undefined: not wanted.
void linear_attention_backward(ComputeContext& context, const Tensor& q, const Tensor& k,
                               const Tensor& v, const Tensor& grad_out,
                               const LinearAttentionOptions& options,
                               const LinearAttentionState& initial,
                               const LinearAttentionState& grad_final, const Tensor& grad_q,
                               const Tensor& grad_k, const Tensor& grad_v,
                               const LinearAttentionState& grad_initial);

// One step of causal generation: state += exp(c) phi(k) v^T (z likewise), then
// out = phi(q)^T S / (phi(q)^T z + eps) with the updated state (options.causal is ignored).
//   q, k (B, H, Dk); v, out (B, H, Dv); options.key_log_scale (B, H) or undefined; state updated
//   in place (with a log scale: m <- max(m, c), the state rescaled to it).
void linear_attention_step(ComputeContext& context, const Tensor& q, const Tensor& k,
                           const Tensor& v, const LinearAttentionOptions& options,
                           const LinearAttentionState& state, const Tensor& out);

// The largest key (feature) dimension: Performer features are typically 256 per head.
inline constexpr std::int64_t kLinearAttentionMaxKeyDim = 1024;

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
