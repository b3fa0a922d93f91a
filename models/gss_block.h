// The Gated State Space block (Mehta et al.; MECHANISMS.md section 11) on this rank's shard of a
// sequence, rows (B, S, E) with the sequence at dimension 1:
//   shortcut = x
//   a = LN(x)                                 (B, S, E)   gain, bias (E)
//   v = GELU(a W_v)                           (B, S, F)   W_v (E, F), F = 4E
//   u = LN(GELU(a W_u))                       (B, S, H)   W_u (E, H), gain, bias (H)
//   y = DSS-exp convolution of u + D u        (B, S, H)   along the sequence, computed as
//                                                         (B, H, S) shards by the distributed
//                                                         diagonal SSM
//                                                         (parallel/diagonal_ssm_parallel.h)
//   o = ((y W_c) * v) W_o + shortcut          (B, S, E)   W_c (H, F), W_o (F, E)
// Widths: F = 4E; H = E / 4, at most 256 (the paper's 256 at its model width 1024), so that the
// DSS, whose cost grows with H x modes, stays proportionate in small models;
// the DSS has 512 modes with dt = 1 and a random Lambda, unless the mixer asks for another state
// size. dt stays fixed at 1 as in the paper (Lambda's learned scale stands in for it); every other
// parameter is learned, with gradients summed over the sequence group.
//
// Initialisation from one seed (identical on every rank): layer norm gains 1, biases 0; each
// weight matrix N(0, 1/fan_in); the DSS by make_dss_parameters(H, modes, seed, 1.0).
//
// Forward keeps what backward needs rather than recomputing it: a, a W_v, v, a W_u, GELU(a W_u), u
// (as (B, H, S)), y and y W_c; the gate product (y W_c) * v is recomputed. Padding positions
// produce zero output and receive zero gradient.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/diagonal_ssm.h"
#include "models/block_rows.h"
#include "models/mixer.h"
#include "models/parameter_set.h"
#include "parallel/distributed_attention.h"
#include "parallel/state_scan.h"

namespace longseq {

struct GssBlockShape {
  std::int64_t batch = 1;
  std::int64_t width = 0;     // E
  std::int64_t expanded = 0;  // F = 4E
  std::int64_t hidden = 0;    // H = clamp(E / 4, 1, 256)
  std::int64_t modes = 512;   // DSS state size

  // The paper's widths for model width E; `modes` DSS modes.
  static GssBlockShape of(std::int64_t batch, std::int64_t width, std::int64_t modes);
};

class GssBlock {
 public:
  GssBlock(const GssBlockShape& shape, std::uint64_t seed, StateScanStrategy strategy);

  [[nodiscard]] const GssBlockShape& shape() const { return shape_; }
  // Names, values and (after backward) gradients of the parameters, in one order:
  // norm_gain, norm_bias, w_v, w_u, u_norm_gain, u_norm_bias, w_c, w_o, ssm_lambda, ssm_b,
  // ssm_c, ssm_d.
  [[nodiscard]] const ParameterSet& parameters() const { return parameters_; }

  // x, out: shards (B, S, E) fp32 CPU, contiguous.
  void forward(ShardContext& context, const Tensor& x, const Tensor& out);
  // grad_x (B, S, E) is overwritten, the parameter gradients too (summed over the group).
  void backward(ShardContext& context, const Tensor& grad_out, const Tensor& grad_x);

  // Communication of the last call (the SSM's state scan and the gradient all-reduce).
  [[nodiscard]] const DistributedAttentionStats& last_stats() const { return stats_; }

  // FLOPs over a global sequence of `length` positions: the matrix products 2mnk each (backward
  // twice the forward's), plus the DSS by its convention (kernels/diagonal_ssm.h).
  [[nodiscard]] double forward_flops(std::int64_t length) const;
  [[nodiscard]] double backward_flops(std::int64_t length) const;

 private:
  GssBlockShape shape_;
  ParameterSet parameters_;
  Tensor norm_gain_, norm_bias_, w_v_, w_u_, u_norm_gain_, u_norm_bias_, w_c_, w_o_;
  DiagonalSsmParameters ssm_;
  DiagonalSsmParameters ssm_gradients_;
  StateScanStrategy strategy_;
  DistributedAttentionStats stats_;
  // Saved by forward: rows (B S, width) unless said otherwise.
  Tensor x_, normed_, v_pre_, v_, u_pre_, u_gelu_, u_channels_ /* (B, H, S) */, y_, gate_in_;
  LayerNormRows x_norm_, u_norm_;
};

}  // namespace longseq
