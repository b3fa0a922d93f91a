// The momentum residual connection of the Momentum Transformer (MECHANISMS.md section 4): the
// residual stream moves like a heavy ball. With g_l the output of layer l's sublayer on x_l:
//   v_l = mu_l v_{l-1} - g_l,   x_{l+1} = x_l - gamma_r v_l,   v_0 = 0
// mu_l = mu_r = 0 and gamma_r = 1 give x_{l+1} = x_l + g_l, the plain residual.
//
// Adaptive momentum replaces the fixed mu_r by
//   mu_l = clamp((1 - sqrt(||g_l - g_{l-1}|| / ||v_{l-1}||))^2, 0, 1 - delta),   delta = 1e-4
// with norms over the whole sequence: each rank sums the squares over its shard and the sums are
// all-reduced over the sequence-parallel group, so every rank (and every rank count) uses the same
// mu_l up to reassociation. Where ||v_{l-1}|| = 0 (the first layer) the velocity term vanishes
// and mu_l = 0. Shards' padding rows must be zero (as mixers produce them). The backward treats
// mu_l as a constant (stop-gradient): the gradient does not flow through the norms.
//
// Tensors: x, g, velocity and their gradients are contiguous CPU tensors of one shape and one
// floating dtype (fp32, or fp64 for finite-difference tests), any layout (e.g. (B, N, E)).
#pragma once

#include <cstdint>
#include <vector>

#include "parallel/communicator.h"
#include "runtime/tensor.h"

namespace longseq {

struct MomentumResidualOptions {
  double momentum = 0.5;  // mu_r (fixed momentum), in [0, 1)
  double step = 0.8;      // gamma_r
  bool adaptive = false;  // mu_l from the norms instead of mu_r
  double delta = 1e-4;    // adaptive: mu_l <= 1 - delta
};

// The adaptive mu_l from the squared norms ||g_l - g_{l-1}||^2 and ||v_{l-1}||^2 (global sums).
double adaptive_momentum(double difference_squared, double velocity_squared, double delta);

// The residual stream across the layers of one forward pass and its backward, for one shard.
class MomentumResidual {
 public:
  // sequence_group: the ranks holding the other shards (for adaptive norms; unused otherwise).
  MomentumResidual(const MomentumResidualOptions& options, Communicator& sequence_group);

  // Starts a forward pass: v_0 = 0, no previous g, no recorded momenta.
  void reset();

  // Layer l (the next one): v_l = mu_l v_{l-1} - g_l, then x -= gamma_r v_l in place. Records mu_l
  // for the backward and returns it.
  double forward(const Tensor& x, const Tensor& g);

  // Backward of layer `layer` (0-based; call from the last layer down to 0):
  //   grad_x         in: dL/dx_{l+1}, out: dL/dx_l (in place)
  //   grad_velocity  in: dL/dv_l from the later layers (zero tensor for the last layer),
  //                  out: dL/dv_{l-1} (in place)
  //   grad_g         out: dL/dg_l (overwritten)
  void backward(std::int64_t layer, const Tensor& grad_x, const Tensor& grad_velocity,
                const Tensor& grad_g) const;

  [[nodiscard]] const Tensor& velocity() const { return velocity_; }
  // mu_l of every layer of the last forward pass.
  [[nodiscard]] const std::vector<double>& momenta() const { return momenta_; }

 private:
  double layer_momentum(const Tensor& g);

  MomentumResidualOptions options_;
  Communicator& sequence_group_;
  Tensor velocity_;    // v_{l-1}, then v_l
  Tensor previous_g_;  // g_{l-1} (adaptive only)
  std::vector<double> momenta_;
};

}  // namespace longseq
