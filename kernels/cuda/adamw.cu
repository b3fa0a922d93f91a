// AdamW on CUDA: one element-wise grid-stride kernel over the flattened fp32 parameter
// (kernels/common/adamw_math.h).
#include <cstdint>

#include "kernels/backends.h"
#include "kernels/common/adamw_math.h"
#include "kernels/cuda/element.cuh"
#include "runtime/cuda/resources.h"

namespace longseq::cuda {

namespace {

constexpr int kThreads = 256;

__global__ void __launch_bounds__(kThreads)
    adamw_kernel(std::int64_t count, float* param, const float* grad, float* m, float* v,
                 AdamWCoefficients coefficients) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * kThreads;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < count;
       i += stride) {
    adamw_update(param[i], grad[i], m[i], v[i], coefficients);
  }
}

}  // namespace

void adamw_step(ComputeContext& context, const Tensor& param, const Tensor& grad, const Tensor& m,
                const Tensor& v, const AdamWOptions& options) {
  const std::int64_t count = param.numel();
  if (count == 0) {
    return;
  }
  adamw_kernel<<<grid_stride_blocks(count, kThreads), kThreads, 0, context.cuda().stream()>>>(
      count, param.data<float>(), grad.data<float>(), m.data<float>(), v.data<float>(),
      adamw_coefficients(options));
  CUDA_CHECK_LAUNCH();
}

}  // namespace longseq::cuda
