// Performer feature math shared by the CPU, CUDA and reference implementations
// (kernels/performer.h). Per row x (d values) with raw projections p_r = w_r . x (the GEMM):
//   l_r = d^(-1/4) p_r - ||x||^2 / (2 sqrt(d)),   s = max_r l_r,   phi~_r = m^(-1/2) exp(l_r - s)
// and, backward, with g_r = dL/d phi~_r:
//   dl_r = g_r phi~_r,   dL/dx = d^(-1/4) sum_r dl_r w_r - d^(-1/2) (sum_r dl_r) x.
#pragma once

#include <cmath>

#include "runtime/host_device.h"

namespace longseq {

// The constants of one (m, d).
struct PerformerScales {
  float input;          // d^(-1/4): x' = input x
  float half_norm;      // 1 / (2 sqrt(d)): ||x'||^2 / 2 = half_norm ||x||^2
  float feature;        // m^(-1/2)
  float norm_gradient;  // d^(-1/2): d(||x'||^2 / 2) / dx = norm_gradient x
};

inline PerformerScales performer_scales(long long features, long long head_dim) {
  const double d = static_cast<double>(head_dim);
  return {static_cast<float>(std::pow(d, -0.25)), static_cast<float>(0.5 / std::sqrt(d)),
          static_cast<float>(1.0 / std::sqrt(static_cast<double>(features))),
          static_cast<float>(1.0 / std::sqrt(d))};
}

// l_r from the raw projection p_r = w_r . x and ||x||^2.
LONGSEQ_HOST_DEVICE float performer_logit(const PerformerScales& scales, float projection,
                                          float squared_norm) {
  return scales.input * projection - scales.half_norm * squared_norm;
}

// phi~_r from l_r and s = max_r l_r.
LONGSEQ_HOST_DEVICE float performer_feature(const PerformerScales& scales, float logit,
                                            float log_scale) {
  return scales.feature * expf(logit - log_scale);
}

// dL/dx from sum_r dl_r w_r (already times d^(-1/4)) and sum_r dl_r: the norm term.
LONGSEQ_HOST_DEVICE float performer_input_gradient(const PerformerScales& scales,
                                                   float projected_gradient, float logit_sum,
                                                   float x) {
  return projected_gradient - scales.norm_gradient * logit_sum * x;
}

}  // namespace longseq
