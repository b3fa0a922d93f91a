// The row steps of the Performer features on the CPU (kernels/performer.h): the projections come
// from the GEMM; each row finishes them with the shared math of kernels/common/performer_math.h.
#include <algorithm>
#include <cstdint>
#include <limits>

#include "kernels/backends.h"
#include "kernels/common/performer_math.h"

namespace longseq::cpu {

namespace {

float squared_norm(const float* x, std::int64_t d) {
  float sum = 0.0f;
  for (std::int64_t c = 0; c < d; ++c) {
    sum += x[c] * x[c];
  }
  return sum;
}

}  // namespace

void performer_feature_rows(ComputeContext& context, const Tensor& x, const Tensor& features,
                            const Tensor& log_scale) {
  const std::int64_t d = x.size(-1);
  const std::int64_t m = features.size(-1);
  const std::int64_t rows = x.numel() / d;
  const PerformerScales scales = performer_scales(m, d);
#pragma omp parallel for num_threads(context.cpu_threads()) schedule(static)
  for (std::int64_t row = 0; row < rows; ++row) {
    float* f = features.data<float>() + row * m;
    const float norm = squared_norm(x.data<float>() + row * d, d);
    float max_logit = -std::numeric_limits<float>::infinity();
    for (std::int64_t r = 0; r < m; ++r) {
      f[r] = performer_logit(scales, f[r], norm);
      max_logit = std::max(max_logit, f[r]);
    }
    for (std::int64_t r = 0; r < m; ++r) {
      f[r] = performer_feature(scales, f[r], max_logit);
    }
    log_scale.data<float>()[row] = max_logit;
  }
}

void performer_feature_grad_rows(ComputeContext& context, const Tensor& x, const Tensor& features,
                                 const Tensor& grad_features, const Tensor& grad_logits,
                                 const Tensor& grad_x) {
  const std::int64_t d = x.size(-1);
  const std::int64_t m = features.size(-1);
  const std::int64_t rows = x.numel() / d;
  const PerformerScales scales = performer_scales(m, d);
#pragma omp parallel for num_threads(context.cpu_threads()) schedule(static)
  for (std::int64_t row = 0; row < rows; ++row) {
    const float* f = features.data<float>() + row * m;
    const float* g = grad_features.data<float>() + row * m;
    float* dl = grad_logits.data<float>() + row * m;
    float sum = 0.0f;
    for (std::int64_t r = 0; r < m; ++r) {
      dl[r] = g[r] * f[r];
      sum += dl[r];
    }
    const float* xr = x.data<float>() + row * d;
    float* dx = grad_x.data<float>() + row * d;
    for (std::int64_t c = 0; c < d; ++c) {
      dx[c] = performer_input_gradient(scales, 0.0f, sum, xr[c]);
    }
  }
}

}  // namespace longseq::cpu
