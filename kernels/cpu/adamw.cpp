// AdamW on the CPU: element-wise over the flattened parameter (kernels/common/adamw_math.h).
#include <cstdint>

#include "kernels/backends.h"
#include "kernels/common/adamw_math.h"

namespace longseq::cpu {

void adamw_step(ComputeContext& context, const Tensor& param, const Tensor& grad, const Tensor& m,
                const Tensor& v, const AdamWOptions& options) {
  const AdamWCoefficients coefficients = adamw_coefficients(options);
  const std::int64_t count = param.numel();
  float* param_values = param.data<float>();
  const float* grad_values = grad.data<float>();
  float* m_values = m.data<float>();
  float* v_values = v.data<float>();
#pragma omp parallel for simd schedule(static) num_threads(context.cpu_threads())
  for (std::int64_t i = 0; i < count; ++i) {
    adamw_update(param_values[i], grad_values[i], m_values[i], v_values[i], coefficients);
  }
}

}  // namespace longseq::cpu
