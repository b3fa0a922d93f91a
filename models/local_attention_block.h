// A pre-LN residual block of chunked local causal softmax attention (the attention blocks of the
// GSS hybrid, MECHANISMS.md section 11) on this rank's shard (B, S, E), E = heads x head_dim:
//   a = LN(x)                                   (B, S, E)      gain, bias (E)
//   q, k, v = a W_q, a W_k, a W_v               (B, H, S, D)   W_q, W_k, W_v (E, E)
//   o = LocalAttention(q, k, v) W_o + x         (B, S, E)      W_o (E, E)
// LocalAttention attends each query to the keys of its chunk (chunk positions aligned at
// multiples of the chunk) up to itself, across ranks by parallel/local_attention_parallel.h.
// Initialisation from one seed: gain 1, bias 0, weights N(0, 1/E). Forward keeps a, q, k, v, the
// attention output and its LSE for backward. Padding positions produce zero output and receive
// zero gradient; parameter gradients are summed over the sequence group.
#pragma once

#include <cstdint>

#include "models/block_rows.h"
#include "models/mixer.h"
#include "models/parameter_set.h"
#include "parallel/distributed_attention.h"
#include "parallel/local_attention_parallel.h"

namespace longseq {

struct LocalAttentionBlockShape {
  std::int64_t batch = 1;
  std::int64_t heads = 1;
  std::int64_t head_dim = 0;
  std::int64_t chunk = 512;

  [[nodiscard]] std::int64_t width() const { return heads * head_dim; }
};

class LocalAttentionBlock {
 public:
  LocalAttentionBlock(const LocalAttentionBlockShape& shape, std::uint64_t seed);

  // Parameters in the order norm_gain, norm_bias, w_q, w_k, w_v, w_o.
  [[nodiscard]] const ParameterSet& parameters() const { return parameters_; }

  // x, out: shards (B, S, E) fp32 CPU, contiguous.
  void forward(ShardContext& context, const Tensor& x, const Tensor& out);
  // grad_x (B, S, E) and the parameter gradients are overwritten.
  void backward(ShardContext& context, const Tensor& grad_out, const Tensor& grad_x);

  [[nodiscard]] const DistributedAttentionStats& last_stats() const { return stats_; }

  // FLOPs over a global sequence of `length` positions: projections 2mnk each (backward twice),
  // attention by the flash convention summed over the chunks (backward 2.5x).
  [[nodiscard]] double forward_flops(std::int64_t length) const;
  [[nodiscard]] double backward_flops(std::int64_t length) const;

 private:
  LocalAttentionBlockShape shape_;
  LocalAttentionConfig config_;
  ParameterSet parameters_;
  Tensor norm_gain_, norm_bias_, w_q_, w_k_, w_v_, w_o_;
  DistributedAttentionStats stats_;
  // Saved by forward: x and a as rows (B S, E); q, k, v, attention output (B, H, S, D); lse
  // (B, H, S); the attention output as rows (B S, E).
  Tensor x_, normed_, q_, k_, v_, attended_, lse_, attended_rows_;
  LayerNormRows norm_;
};

}  // namespace longseq
