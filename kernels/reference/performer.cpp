// Reference Performer features in double, from the definition (kernels/performer.h): the logits
// l_r = w_r . x' - ||x'||^2 / 2 directly, phi~_r = m^(-1/2) exp(l_r - max l); the backward by the
// chain rule through l only (phi = exp(s) phi~ does not depend on s).
#include "kernels/performer.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/reference/values.h"

namespace longseq::reference {

namespace {

// The logits of row `row` of x (d values) under W (m x d).
std::vector<double> logits_of(const std::vector<double>& x, const std::vector<double>& w,
                              std::int64_t row, std::int64_t m, std::int64_t d) {
  const double scale = std::pow(static_cast<double>(d), -0.25);
  double half_norm = 0.0;
  for (std::int64_t c = 0; c < d; ++c) {
    const double xc = scale * x[row * d + c];
    half_norm += 0.5 * xc * xc;
  }
  std::vector<double> logits(static_cast<std::size_t>(m));
  for (std::int64_t r = 0; r < m; ++r) {
    double dot = 0.0;
    for (std::int64_t c = 0; c < d; ++c) {
      dot += w[r * d + c] * scale * x[row * d + c];
    }
    logits[r] = dot - half_norm;
  }
  return logits;
}

}  // namespace

void performer_features_forward(const Tensor& x, const Tensor& projection, const Tensor& features,
                                const Tensor& log_scale) {
  constexpr const char* kOp = "reference::performer_features_forward";
  const std::int64_t d = x.size(-1);
  const std::int64_t m = projection.size(0);
  const std::int64_t rows = x.numel() / d;
  const std::vector<double> xs = values_of(kOp, x);
  const std::vector<double> w = values_of(kOp, projection);
  std::vector<double> result(static_cast<std::size_t>(rows * m));
  std::vector<double> scales(static_cast<std::size_t>(rows));
  for (std::int64_t row = 0; row < rows; ++row) {
    const std::vector<double> logits = logits_of(xs, w, row, m, d);
    const double max_logit = *std::max_element(logits.begin(), logits.end());
    for (std::int64_t r = 0; r < m; ++r) {
      result[row * m + r] = std::exp(logits[r] - max_logit) / std::sqrt(static_cast<double>(m));
    }
    scales[row] = max_logit;
  }
  store(kOp, features, result);
  if (log_scale.defined()) {
    store(kOp, log_scale, scales);
  }
}

// With phi_r = m^(-1/2) exp(l_r) and dL/d phi~_r = g_r (so dL/d phi_r = g_r exp(-s)):
// dL/dl_r = g_r phi~_r, dl_r/dx = d^(-1/4) (w_r - x').
void performer_features_backward(const Tensor& x, const Tensor& projection,
                                 const Tensor& grad_features, const Tensor& grad_x) {
  constexpr const char* kOp = "reference::performer_features_backward";
  const std::int64_t d = x.size(-1);
  const std::int64_t m = projection.size(0);
  const std::int64_t rows = x.numel() / d;
  const double scale = std::pow(static_cast<double>(d), -0.25);
  const std::vector<double> xs = values_of(kOp, x);
  const std::vector<double> w = values_of(kOp, projection);
  const std::vector<double> g = values_of(kOp, grad_features);
  std::vector<double> result(xs.size(), 0.0);
  for (std::int64_t row = 0; row < rows; ++row) {
    const std::vector<double> logits = logits_of(xs, w, row, m, d);
    const double max_logit = *std::max_element(logits.begin(), logits.end());
    for (std::int64_t r = 0; r < m; ++r) {
      const double feature = std::exp(logits[r] - max_logit) / std::sqrt(static_cast<double>(m));
      const double grad_logit = g[row * m + r] * feature;
      for (std::int64_t c = 0; c < d; ++c) {
        result[row * d + c] += grad_logit * scale * (w[r * d + c] - scale * xs[row * d + c]);
      }
    }
  }
  store(kOp, grad_x, result);
}

}  // namespace longseq::reference
