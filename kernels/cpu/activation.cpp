// GELU on the CPU: element-wise over the flattened tensor (kernels/common/gelu_math.h).
#include <cstdint>

#include "kernels/backends.h"
#include "kernels/common/gelu_math.h"

namespace longseq::cpu {

void gelu_forward(ComputeContext& context, const Tensor& x, const Tensor& y) {
  const std::int64_t count = x.numel();
  const float* input = x.data<float>();
  float* output = y.data<float>();
#pragma omp parallel for simd schedule(static) num_threads(context.cpu_threads())
  for (std::int64_t i = 0; i < count; ++i) {
    output[i] = gelu(input[i]);
  }
}

void gelu_backward(ComputeContext& context, const Tensor& grad_y, const Tensor& x,
                   const Tensor& grad_x) {
  const std::int64_t count = x.numel();
  const float* grad_output = grad_y.data<float>();
  const float* input = x.data<float>();
  float* grad_input = grad_x.data<float>();
#pragma omp parallel for simd schedule(static) num_threads(context.cpu_threads())
  for (std::int64_t i = 0; i < count; ++i) {
    grad_input[i] = grad_output[i] * gelu_derivative(input[i]);
  }
}

}  // namespace longseq::cpu
