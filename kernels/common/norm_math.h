// Per-element formulas of layer norm and RMS norm shared by the CPU and CUDA kernels.
//
// Both norms are one computation: RMS norm is layer norm with the mean fixed at 0 and no beta.
//   forward   xhat = (x - mean) * rstd,  rstd = 1 / sqrt(mean((x - mean)^2) + eps),
//             y = xhat * gamma + beta
//   backward  with dxhat = grad_y * gamma and the row means
//               mean_dxhat      = mean(dxhat)          (layer norm only; 0 for RMS norm)
//               mean_dxhat_xhat = mean(dxhat * xhat),
//             grad_x = rstd * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat)
//             grad_gamma = sum over rows of grad_y * xhat,  grad_beta = sum over rows of grad_y
#pragma once

#include <cmath>

#include "runtime/host_device.h"

namespace longseq {

// rstd from the mean squared deviation of a row (its biased variance, or mean(x^2) for RMS norm).
LONGSEQ_HOST_DEVICE float norm_rstd(float mean_squared_deviation, float eps) {
  return 1.0f / sqrtf(mean_squared_deviation + eps);
}

LONGSEQ_HOST_DEVICE float norm_normalized(float x, float mean, float rstd) {
  return (x - mean) * rstd;
}

LONGSEQ_HOST_DEVICE float norm_output(float x, float mean, float rstd, float gamma, float beta) {
  return norm_normalized(x, mean, rstd) * gamma + beta;
}

// grad_x of one element given the row means of dxhat and dxhat * xhat (see the file comment).
LONGSEQ_HOST_DEVICE float norm_grad_input(float dxhat, float xhat, float rstd, float mean_dxhat,
                                          float mean_dxhat_xhat) {
  return rstd * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat);
}

}  // namespace longseq
