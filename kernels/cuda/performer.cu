// cuda::performer_feature_rows / performer_feature_grad_rows (kernels/performer.h): the row steps
// after and before the cuBLAS projections, one thread per row over the shared math of
// kernels/common/performer_math.h (m and d are at most a few hundred, so a row is a short loop).
#include <cstdint>

#include "kernels/backends.h"
#include "kernels/common/performer_math.h"
#include "runtime/cuda/check.h"
#include "runtime/cuda/resources.h"

namespace longseq::cuda {

namespace {

constexpr int kThreads = 128;

__device__ float squared_norm(const float* x, long long d) {
  float sum = 0.0f;
  for (long long c = 0; c < d; ++c) {
    sum += x[c] * x[c];
  }
  return sum;
}

__global__ void __launch_bounds__(kThreads)
    feature_rows_kernel(PerformerScales scales, long long rows, long long d, long long m,
                        const float* x, float* features, float* log_scale) {
  const long long row = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (row >= rows) {
    return;
  }
  float* f = features + row * m;
  const float norm = squared_norm(x + row * d, d);
  float max_logit = -INFINITY;
  for (long long r = 0; r < m; ++r) {
    f[r] = performer_logit(scales, f[r], norm);
    max_logit = fmaxf(max_logit, f[r]);
  }
  for (long long r = 0; r < m; ++r) {
    f[r] = performer_feature(scales, f[r], max_logit);
  }
  log_scale[row] = max_logit;
}

__global__ void __launch_bounds__(kThreads)
    feature_grad_rows_kernel(PerformerScales scales, long long rows, long long d, long long m,
                             const float* x, const float* features, const float* grad_features,
                             float* grad_logits, float* grad_x) {
  const long long row = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (row >= rows) {
    return;
  }
  float sum = 0.0f;
  for (long long r = 0; r < m; ++r) {
    const float dl = grad_features[row * m + r] * features[row * m + r];
    grad_logits[row * m + r] = dl;
    sum += dl;
  }
  for (long long c = 0; c < d; ++c) {
    grad_x[row * d + c] = performer_input_gradient(scales, 0.0f, sum, x[row * d + c]);
  }
}

unsigned int blocks_for(std::int64_t rows) {
  return static_cast<unsigned int>((rows + kThreads - 1) / kThreads);
}

}  // namespace

void performer_feature_rows(ComputeContext& context, const Tensor& x, const Tensor& features,
                            const Tensor& log_scale) {
  const std::int64_t d = x.size(-1);
  const std::int64_t m = features.size(-1);
  const std::int64_t rows = x.numel() / d;
  if (rows == 0) {
    return;
  }
  feature_rows_kernel<<<blocks_for(rows), kThreads, 0, context.cuda().stream()>>>(
      performer_scales(m, d), rows, d, m, x.data<float>(), features.data<float>(),
      log_scale.data<float>());
  CUDA_CHECK_LAUNCH();
}

void performer_feature_grad_rows(ComputeContext& context, const Tensor& x, const Tensor& features,
                                 const Tensor& grad_features, const Tensor& grad_logits,
                                 const Tensor& grad_x) {
  const std::int64_t d = x.size(-1);
  const std::int64_t m = features.size(-1);
  const std::int64_t rows = x.numel() / d;
  if (rows == 0) {
    return;
  }
  feature_grad_rows_kernel<<<blocks_for(rows), kThreads, 0, context.cuda().stream()>>>(
      performer_scales(m, d), rows, d, m, x.data<float>(), features.data<float>(),
      grad_features.data<float>(), grad_logits.data<float>(), grad_x.data<float>());
  CUDA_CHECK_LAUNCH();
}

}  // namespace longseq::cuda
