// The AdamW update of one element (kernels/adamw.h), shared by the CPU and CUDA kernels.
#pragma once

#include <cmath>

#include "kernels/adamw.h"
#include "runtime/host_device.h"

namespace longseq {

// The per-step constants of the update, with the bias corrections 1 - beta^t computed once on the
// host in double (beta^t for large t loses nothing that way).
struct AdamWCoefficients {
  float learning_rate;
  float beta1;
  float beta2;
  float eps;
  float weight_decay;
  float bias_correction1;  // 1 - beta1^t
  float bias_correction2;  // 1 - beta2^t
};

inline AdamWCoefficients adamw_coefficients(const AdamWOptions& options) {
  const auto step = static_cast<double>(options.step);
  return AdamWCoefficients{
      options.learning_rate,
      options.beta1,
      options.beta2,
      options.eps,
      options.weight_decay,
      static_cast<float>(1.0 - std::pow(static_cast<double>(options.beta1), step)),
      static_cast<float>(1.0 - std::pow(static_cast<double>(options.beta2), step)),
  };
}

// Updates m and v with gradient g, and param with the bias-corrected step plus weight decay of the
// parameter's value before this step (decoupled from the gradient).
LONGSEQ_HOST_DEVICE void adamw_update(float& param, float grad, float& m, float& v,
                                      const AdamWCoefficients& k) {
  m = k.beta1 * m + (1.0f - k.beta1) * grad;
  v = k.beta2 * v + (1.0f - k.beta2) * grad * grad;
  const float m_hat = m / k.bias_correction1;
  const float v_hat = v / k.bias_correction2;
  param -= k.learning_rate * (m_hat / (sqrtf(v_hat) + k.eps) + k.weight_decay * param);
}

}  // namespace longseq
