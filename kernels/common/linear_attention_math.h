// Linear attention math shared by the CPU, CUDA and reference implementations (MECHANISMS.md
// section 3):
//   phi(x) = elu(x) + 1 (x + 1 for x > 0, exp(x) otherwise): positive, so the normaliser is too
//   out_i  = num_i / den_i,   num_i = phi(q_i)^T S_i,   den_i = phi(q_i)^T z_i + eps
// and the gradient of one readout: with g_i = dL/d out_i,
//   dL/d num_i = g_i / den_i,   dL/d den_i = -(g_i . out_i) / den_i.
// The kernels keep S and z side by side as one augmented state S' = [S | z] (Dk x (Dv + 1)), so
// that num_i and den_i - eps come out of one product phi(q_i)^T S', and the gradient of the
// readout is the augmented row [dL/d num_i | dL/d den_i].
// With key log scales (kernels/linear_attention.h) a state stands for exp(m) S'; moving it to a
// larger log scale M multiplies it by log_scale_factor(m, M) = exp(m - M) <= 1.
#pragma once

#include <cmath>

#include "kernels/linear_attention.h"
#include "runtime/host_device.h"

namespace longseq {

inline constexpr float kLinearAttentionEps = 1e-6f;

LONGSEQ_HOST_DEVICE float elu_feature(float x) { return x > 0.0f ? x + 1.0f : expf(x); }
LONGSEQ_HOST_DEVICE double elu_feature(double x) { return x > 0.0 ? x + 1.0 : exp(x); }

// d phi / dx.
LONGSEQ_HOST_DEVICE float elu_feature_derivative(float x) { return x > 0.0f ? 1.0f : expf(x); }
LONGSEQ_HOST_DEVICE double elu_feature_derivative(double x) { return x > 0.0 ? 1.0 : exp(x); }

// phi(x) and phi'(x) of the feature map (the identity: x and 1).
template <typename T>
LONGSEQ_HOST_DEVICE T key_feature(LinearAttentionFeatureMap map, T x) {
  return map == LinearAttentionFeatureMap::identity ? x : elu_feature(x);
}
template <typename T>
LONGSEQ_HOST_DEVICE T key_feature_derivative(LinearAttentionFeatureMap map, T x) {
  return map == LinearAttentionFeatureMap::identity ? T(1) : elu_feature_derivative(x);
}

// 1 / den from the product phi(q)^T z (den = phi(q)^T z + eps). With eps = 0 a denominator that
// underflowed to 0 (every visible feature product below the smallest float) yields 0, so that
// the output and its gradient are 0 instead of NaN.
template <typename T>
LONGSEQ_HOST_DEVICE T inverse_normaliser(T feature_dot_z, T eps) {
  const T den = feature_dot_z + eps;
  return den > T(0) ? T(1) / den : T(0);
}

// exp(from - to) for log scales from <= to; 1 when both are equal (-inf included).
LONGSEQ_HOST_DEVICE float log_scale_factor(float from, float to) {
  return from == to ? 1.0f : expf(from - to);
}
LONGSEQ_HOST_DEVICE double log_scale_factor(double from, double to) {
  return from == to ? 1.0 : exp(from - to);
}

// dL/d den_i = -(g_i . out_i) / den_i, from sum_c g_ic out_ic and 1 / den_i.
template <typename T>
LONGSEQ_HOST_DEVICE T normaliser_gradient(T grad_dot_out, T inverse_den) {
  return -grad_dot_out * inverse_den;
}

}  // namespace longseq
