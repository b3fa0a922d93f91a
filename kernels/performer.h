// Performer (FAVOR+) positive random features (Choromanski et al.; MECHANISMS.md section 5).
//
//   x' = x d^(-1/4),   l_r(x) = w_r . x' - ||x'||^2 / 2,   phi(x)_r = m^(-1/2) exp(l_r(x))
//
// so that E[phi(q) . phi(k)] = exp(q . k / sqrt(d)) over the draws of the rows w_r ~ N(0, I_d).
// exp(l_r) overflows fp32 for large inputs, so the features come stabilised: with the per-token
// log scale s(x) = max_r l_r(x),
//
//   features_r = phi~(x)_r = m^(-1/2) exp(l_r - s) in (0, m^(-1/2)],   phi(x) = exp(s) phi~(x).
//
// A query's s cancels in the attention ratio; a key's s is passed to linear attention as its key
// log scale (kernels/linear_attention.h), which keeps the state's scale exactly, so the Performer
// stays exactly causal and equal for every split of the sequence.
//
// The projection W (m x d, rows w_r) is drawn on the host from the Philox stream of (seed, epoch):
// orthogonal (default) in blocks of d rows, each block a d x d Gaussian matrix orthonormalised by
// Gram-Schmidt in double, each row rescaled to the norm of a fresh d-dim Gaussian vector (so every
// row is still marginally N(0, I_d)); or i.i.d. Gaussian rows. The same (seed, epoch) gives the
// same W on every rank and device.
//
// Layouts (contiguous, fp32):
//   x              (B, H, N, d)
//   projection     (m, d) on the device of x
//   features       (B, H, N, m)
//   log_scale      (B, H, N)
#pragma once

#include <cstdint>

#include "runtime/context.h"
#include "runtime/tensor.h"

namespace longseq {

struct PerformerProjectionOptions {
  std::int64_t features = 256;  // m
  std::int64_t head_dim = 64;   // d
  bool orthogonal = true;
  std::uint64_t seed = 0;
  std::uint64_t epoch = 0;  // redraw counter (step / redraw interval)
};

// W (m, d), fp32 on the CPU.
Tensor performer_projection(const PerformerProjectionOptions& options);

// features = phi~(x), log_scale = s(x).
void performer_features_forward(ComputeContext& context, const Tensor& x, const Tensor& projection,
                                const Tensor& features, const Tensor& log_scale);

// grad_x = dL/dx from grad_features = dL/d phi~ (with the log scale held fixed, as linear
// attention reports it). Since phi = exp(s) phi~ does not depend on s, the stabiliser's path
// cancels: dL/dl_r = grad_features_r features_r, and
//   grad_x = d^(-1/4) (sum_r dL/dl_r w_r - (sum_r dL/dl_r) x').
// features: those of performer_features_forward for the same x and projection.
void performer_features_backward(ComputeContext& context, const Tensor& x, const Tensor& projection,
                                 const Tensor& features, const Tensor& grad_features,
                                 const Tensor& grad_x);

// FLOPs of one forward: the projection 2 B H N m d (the exponentials are not counted).
double performer_features_flops(std::int64_t rows, std::int64_t features, std::int64_t head_dim);

namespace reference {

// The same in plain loops, in double, from the definition (any floating dtype; CPU).
void performer_features_forward(const Tensor& x, const Tensor& projection, const Tensor& features,
                                const Tensor& log_scale);
void performer_features_backward(const Tensor& x, const Tensor& projection,
                                 const Tensor& grad_features, const Tensor& grad_x);

}  // namespace reference

}  // namespace longseq
