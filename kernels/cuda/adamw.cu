// AdamW on CUDA: one element-wise grid-stride kernel over the flattened fp32 parameter
// (kernels/common/adamw_math.h).
#include <algorithm>
#include <cstdint>

#include "kernels/backends.h"
#include "kernels/common/adamw_math.h"
#include "runtime/cuda/resources.h"

namespace longseq::cuda {

namespace {

constexpr int kThreads = 256;
// Enough blocks to fill any current GPU several times over; larger tensors loop in the kernel.
constexpr std::int64_t kMaxBlocks = 8192;

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
  const auto blocks =
      static_cast<unsigned int>(std::min(kMaxBlocks, (count + kThreads - 1) / kThreads));
  adamw_kernel<<<blocks, kThreads, 0, context.cuda().stream()>>>(
      count, param.data<float>(), grad.data<float>(), m.data<float>(), v.data<float>(),
      adamw_coefficients(options));
  CUDA_CHECK_LAUNCH();
}

}  // namespace longseq::cuda
