// Reference layer norm and RMS norm over the last dimension; statistics recomputed in double.
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/reference.h"
#include "kernels/reference/values.h"

namespace longseq::reference {

namespace {

struct Rows {
  std::int64_t count = 0;
  std::int64_t width = 0;
};

Rows rows_of(const char* op, const Tensor& x, const Tensor& gamma) {
  LONGSEQ_CHECK(x.rank() == 2, "[{}] x must be (R, C), got {}", op, x.describe());
  const Rows rows{x.size(0), x.size(1)};
  check_shape(op, "gamma", gamma, {rows.width});
  return rows;
}

// Mean and 1 / sqrt(variance + eps) of one row (biased variance, as layer norm defines it).
void layer_statistics(const double* row, std::int64_t width, double eps, double& mean,
                      double& rstd) {
  double sum = 0.0;
  for (std::int64_t c = 0; c < width; ++c) {
    sum += row[c];
  }
  mean = sum / static_cast<double>(width);
  double squares = 0.0;
  for (std::int64_t c = 0; c < width; ++c) {
    squares += (row[c] - mean) * (row[c] - mean);
  }
  rstd = 1.0 / std::sqrt(squares / static_cast<double>(width) + eps);
}

double rms_statistic(const double* row, std::int64_t width, double eps) {
  double squares = 0.0;
  for (std::int64_t c = 0; c < width; ++c) {
    squares += row[c] * row[c];
  }
  return 1.0 / std::sqrt(squares / static_cast<double>(width) + eps);
}

}  // namespace

void layer_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                        const Tensor& y) {
  const char* op = "reference::layer_norm_forward";
  const Rows rows = rows_of(op, x, gamma);
  check_shape(op, "beta", beta, gamma.shape());
  check_shape(op, "y", y, x.shape());
  const std::vector<double> x_values = values_of(op, x);
  const std::vector<double> gamma_values = values_of(op, gamma);
  const std::vector<double> beta_values = values_of(op, beta);
  std::vector<double> y_values(x_values.size());
  for (std::int64_t r = 0; r < rows.count; ++r) {
    const double* x_row = &x_values[r * rows.width];
    double mean = 0.0;
    double rstd = 0.0;
    layer_statistics(x_row, rows.width, eps, mean, rstd);
    for (std::int64_t c = 0; c < rows.width; ++c) {
      y_values[r * rows.width + c] = (x_row[c] - mean) * rstd * gamma_values[c] + beta_values[c];
    }
  }
  store(op, y, y_values);
}

// With xhat = (x - mean) rstd and g = dy gamma: dx = rstd (g - mean(g) - xhat mean(g xhat)).
void layer_norm_backward(const Tensor& grad_y, const Tensor& x, const Tensor& gamma, float eps,
                         const Tensor& grad_x, const Tensor& grad_gamma, const Tensor& grad_beta) {
  const char* op = "reference::layer_norm_backward";
  const Rows rows = rows_of(op, x, gamma);
  check_shape(op, "grad_y", grad_y, x.shape());
  check_shape(op, "grad_x", grad_x, x.shape());
  check_shape(op, "grad_gamma", grad_gamma, gamma.shape());
  check_shape(op, "grad_beta", grad_beta, gamma.shape());
  const std::vector<double> x_values = values_of(op, x);
  const std::vector<double> grad_y_values = values_of(op, grad_y);
  const std::vector<double> gamma_values = values_of(op, gamma);
  std::vector<double> grad_x_values(x_values.size());
  std::vector<double> grad_gamma_values(static_cast<std::size_t>(rows.width), 0.0);
  std::vector<double> grad_beta_values(static_cast<std::size_t>(rows.width), 0.0);
  const double width = static_cast<double>(rows.width);
  for (std::int64_t r = 0; r < rows.count; ++r) {
    const double* x_row = &x_values[r * rows.width];
    const double* grad_y_row = &grad_y_values[r * rows.width];
    double mean = 0.0;
    double rstd = 0.0;
    layer_statistics(x_row, rows.width, eps, mean, rstd);
    double mean_g = 0.0;
    double mean_g_xhat = 0.0;
    for (std::int64_t c = 0; c < rows.width; ++c) {
      const double xhat = (x_row[c] - mean) * rstd;
      const double g = grad_y_row[c] * gamma_values[c];
      mean_g += g / width;
      mean_g_xhat += g * xhat / width;
      grad_gamma_values[c] += grad_y_row[c] * xhat;
      grad_beta_values[c] += grad_y_row[c];
    }
    for (std::int64_t c = 0; c < rows.width; ++c) {
      const double xhat = (x_row[c] - mean) * rstd;
      const double g = grad_y_row[c] * gamma_values[c];
      grad_x_values[r * rows.width + c] = rstd * (g - mean_g - xhat * mean_g_xhat);
    }
  }
  store(op, grad_x, grad_x_values);
  store(op, grad_gamma, grad_gamma_values);
  store(op, grad_beta, grad_beta_values);
}

void rms_norm_forward(const Tensor& x, const Tensor& gamma, float eps, const Tensor& y) {
  const char* op = "reference::rms_norm_forward";
  const Rows rows = rows_of(op, x, gamma);
  check_shape(op, "y", y, x.shape());
  const std::vector<double> x_values = values_of(op, x);
  const std::vector<double> gamma_values = values_of(op, gamma);
  std::vector<double> y_values(x_values.size());
  for (std::int64_t r = 0; r < rows.count; ++r) {
    const double* x_row = &x_values[r * rows.width];
    const double rstd = rms_statistic(x_row, rows.width, eps);
    for (std::int64_t c = 0; c < rows.width; ++c) {
      y_values[r * rows.width + c] = x_row[c] * rstd * gamma_values[c];
    }
  }
  store(op, y, y_values);
}

// With xhat = x rstd and g = dy gamma: dx = rstd (g - xhat mean(g xhat)).
void rms_norm_backward(const Tensor& grad_y, const Tensor& x, const Tensor& gamma, float eps,
                       const Tensor& grad_x, const Tensor& grad_gamma) {
  const char* op = "reference::rms_norm_backward";
  const Rows rows = rows_of(op, x, gamma);
  check_shape(op, "grad_y", grad_y, x.shape());
  check_shape(op, "grad_x", grad_x, x.shape());
  check_shape(op, "grad_gamma", grad_gamma, gamma.shape());
  const std::vector<double> x_values = values_of(op, x);
  const std::vector<double> grad_y_values = values_of(op, grad_y);
  const std::vector<double> gamma_values = values_of(op, gamma);
  std::vector<double> grad_x_values(x_values.size());
  std::vector<double> grad_gamma_values(static_cast<std::size_t>(rows.width), 0.0);
  const double width = static_cast<double>(rows.width);
  for (std::int64_t r = 0; r < rows.count; ++r) {
    const double* x_row = &x_values[r * rows.width];
    const double* grad_y_row = &grad_y_values[r * rows.width];
    const double rstd = rms_statistic(x_row, rows.width, eps);
    double mean_g_xhat = 0.0;
    for (std::int64_t c = 0; c < rows.width; ++c) {
      const double xhat = x_row[c] * rstd;
      mean_g_xhat += grad_y_row[c] * gamma_values[c] * xhat / width;
      grad_gamma_values[c] += grad_y_row[c] * xhat;
    }
    for (std::int64_t c = 0; c < rows.width; ++c) {
      const double xhat = x_row[c] * rstd;
      grad_x_values[r * rows.width + c] =
          rstd * (grad_y_row[c] * gamma_values[c] - xhat * mean_g_xhat);
    }
  }
  store(op, grad_x, grad_x_values);
  store(op, grad_gamma, grad_gamma_values);
}

}  // namespace longseq::reference
