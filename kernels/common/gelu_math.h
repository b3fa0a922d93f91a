// GELU, exact form, shared by the CPU and CUDA kernels:
//   gelu(x)  = x * Phi(x),               Phi(x) = 0.5 * erfc(-x / sqrt 2)
//   gelu'(x) = Phi(x) + x * phi(x),      phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
// Phi is written with erfc rather than 1 + erf(x / sqrt 2): for negative x the latter cancels
// catastrophically in fp32 (about 20% relative error at x = -5), erfc keeps full precision.
#pragma once

#include <cmath>

#include "runtime/host_device.h"

namespace longseq {

// Standard normal cumulative distribution.
LONGSEQ_HOST_DEVICE float normal_cdf(float x) {
  constexpr float kInverseSqrt2 = 0.70710678118654752f;
  return 0.5f * erfcf(-x * kInverseSqrt2);
}

// Standard normal density.
LONGSEQ_HOST_DEVICE float normal_pdf(float x) {
  constexpr float kInverseSqrt2Pi = 0.39894228040143268f;
  return kInverseSqrt2Pi * expf(-0.5f * x * x);
}

LONGSEQ_HOST_DEVICE float gelu(float x) { return x * normal_cdf(x); }

LONGSEQ_HOST_DEVICE float gelu_derivative(float x) { return normal_cdf(x) + x * normal_pdf(x); }

}  // namespace longseq
