// Layer norm and RMS norm on the CPU: one implementation for both, with RMS norm as the case
// without mean and beta (kernels/common/norm_math.h). Rows are independent; grad_gamma and
// grad_beta are sums over rows, accumulated per chunk of rows in double and reduced in chunk order.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/backends.h"
#include "kernels/common/norm_math.h"

namespace longseq::cpu {

namespace {

// Rows are split into this many chunks (fewer when there are fewer rows) for the parameter
// gradients. A constant rather than the thread count, so the sums have the same bits for every
// thread count.
constexpr std::int64_t kParameterGradientChunks = 64;

struct NormRows {
  std::int64_t rows;
  std::int64_t columns;
  bool centered;  // layer norm; RMS norm has no mean and no beta
};

// mean and beta are null for RMS norm.
void norm_forward(const ComputeContext& context, NormRows shape, const float* x, const float* gamma,
                  const float* beta, float eps, float* y, float* mean, float* rstd) {
  const std::int64_t columns = shape.columns;
  const auto inverse_columns = 1.0 / static_cast<double>(columns);
#pragma omp parallel for schedule(static) num_threads(context.cpu_threads())
  for (std::int64_t row = 0; row < shape.rows; ++row) {
    const float* x_row = x + row * columns;  // (C)
    float* y_row = y + row * columns;        // (C)
    float row_mean = 0.0f;
    if (shape.centered) {
      double sum = 0.0;
#pragma omp simd reduction(+ : sum)
      for (std::int64_t c = 0; c < columns; ++c) {
        sum += x_row[c];
      }
      row_mean = static_cast<float>(sum * inverse_columns);
      mean[row] = row_mean;
    }
    // Second pass over deviations from the mean: no cancellation, unlike E[x^2] - E[x]^2.
    double squares = 0.0;
#pragma omp simd reduction(+ : squares)
    for (std::int64_t c = 0; c < columns; ++c) {
      const double deviation = x_row[c] - row_mean;
      squares += deviation * deviation;
    }
    const float row_rstd = norm_rstd(static_cast<float>(squares * inverse_columns), eps);
    rstd[row] = row_rstd;
#pragma omp simd
    for (std::int64_t c = 0; c < columns; ++c) {
      y_row[c] =
          norm_output(x_row[c], row_mean, row_rstd, gamma[c], shape.centered ? beta[c] : 0.0f);
    }
  }
}

// mean, grad_beta are null for RMS norm.
void norm_backward(const ComputeContext& context, NormRows shape, const float* grad_y,
                   const float* x, const float* gamma, const float* mean, const float* rstd,
                   float* grad_x, float* grad_gamma, float* grad_beta) {
  const std::int64_t rows = shape.rows;
  const std::int64_t columns = shape.columns;
  const bool centered = shape.centered;
  const auto inverse_columns = 1.0 / static_cast<double>(columns);
  const std::int64_t chunks = std::max<std::int64_t>(1, std::min(rows, kParameterGradientChunks));
  std::vector<double> partial_gamma(static_cast<std::size_t>(chunks * columns), 0.0);  // (K, C)
  std::vector<double> partial_beta(centered ? partial_gamma.size() : 0, 0.0);          // (K, C)

#pragma omp parallel for schedule(static) num_threads(context.cpu_threads())
  for (std::int64_t chunk = 0; chunk < chunks; ++chunk) {
    double* chunk_gamma = partial_gamma.data() + chunk * columns;
    double* chunk_beta = centered ? partial_beta.data() + chunk * columns : nullptr;
    const std::int64_t row_end = rows * (chunk + 1) / chunks;
    for (std::int64_t row = rows * chunk / chunks; row < row_end; ++row) {
      const float* x_row = x + row * columns;            // (C)
      const float* grad_y_row = grad_y + row * columns;  // (C)
      float* grad_x_row = grad_x + row * columns;        // (C)
      const float row_mean = centered ? mean[row] : 0.0f;
      const float row_rstd = rstd[row];
      double sum_dxhat = 0.0;
      double sum_dxhat_xhat = 0.0;
#pragma omp simd reduction(+ : sum_dxhat, sum_dxhat_xhat)
      for (std::int64_t c = 0; c < columns; ++c) {
        const float xhat = norm_normalized(x_row[c], row_mean, row_rstd);
        const float dxhat = grad_y_row[c] * gamma[c];
        sum_dxhat += dxhat;
        sum_dxhat_xhat += static_cast<double>(dxhat) * xhat;
        chunk_gamma[c] += static_cast<double>(grad_y_row[c]) * xhat;
      }
      if (centered) {
#pragma omp simd
        for (std::int64_t c = 0; c < columns; ++c) {
          chunk_beta[c] += grad_y_row[c];
        }
      }
      const float mean_dxhat = centered ? static_cast<float>(sum_dxhat * inverse_columns) : 0.0f;
      const auto mean_dxhat_xhat = static_cast<float>(sum_dxhat_xhat * inverse_columns);
#pragma omp simd
      for (std::int64_t c = 0; c < columns; ++c) {
        const float xhat = norm_normalized(x_row[c], row_mean, row_rstd);
        grad_x_row[c] =
            norm_grad_input(grad_y_row[c] * gamma[c], xhat, row_rstd, mean_dxhat, mean_dxhat_xhat);
      }
    }
  }

#pragma omp parallel for schedule(static) num_threads(context.cpu_threads())
  for (std::int64_t c = 0; c < columns; ++c) {
    double sum_gamma = 0.0;
    double sum_beta = 0.0;
    for (std::int64_t chunk = 0; chunk < chunks; ++chunk) {
      sum_gamma += partial_gamma[chunk * columns + c];
      if (centered) {
        sum_beta += partial_beta[chunk * columns + c];
      }
    }
    grad_gamma[c] = static_cast<float>(sum_gamma);
    if (centered) {
      grad_beta[c] = static_cast<float>(sum_beta);
    }
  }
}

}  // namespace

void layer_norm_forward(ComputeContext& context, const Tensor& x, const Tensor& gamma,
                        const Tensor& beta, float eps, const Tensor& y, const Tensor& mean,
                        const Tensor& rstd) {
  norm_forward(context, {x.size(0), x.size(1), true}, x.data<float>(), gamma.data<float>(),
               beta.data<float>(), eps, y.data<float>(), mean.data<float>(), rstd.data<float>());
}

void layer_norm_backward(ComputeContext& context, const Tensor& grad_y, const Tensor& x,
                         const Tensor& gamma, const Tensor& mean, const Tensor& rstd,
                         const Tensor& grad_x, const Tensor& grad_gamma, const Tensor& grad_beta) {
  norm_backward(context, {x.size(0), x.size(1), true}, grad_y.data<float>(), x.data<float>(),
                gamma.data<float>(), mean.data<float>(), rstd.data<float>(), grad_x.data<float>(),
                grad_gamma.data<float>(), grad_beta.data<float>());
}

void rms_norm_forward(ComputeContext& context, const Tensor& x, const Tensor& gamma, float eps,
                      const Tensor& y, const Tensor& rstd) {
  norm_forward(context, {x.size(0), x.size(1), false}, x.data<float>(), gamma.data<float>(),
               nullptr, eps, y.data<float>(), nullptr, rstd.data<float>());
}

void rms_norm_backward(ComputeContext& context, const Tensor& grad_y, const Tensor& x,
                       const Tensor& gamma, const Tensor& rstd, const Tensor& grad_x,
                       const Tensor& grad_gamma) {
  norm_backward(context, {x.size(0), x.size(1), false}, grad_y.data<float>(), x.data<float>(),
                gamma.data<float>(), nullptr, rstd.data<float>(), grad_x.data<float>(),
                grad_gamma.data<float>(), nullptr);
}

}  // namespace longseq::cpu
