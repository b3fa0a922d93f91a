// Reference exact GELU: gelu(x) = x Phi(x), gelu'(x) = Phi(x) + x phi(x).
#include <cmath>
#include <cstddef>
#include <vector>

#include "kernels/reference.h"
#include "kernels/reference/values.h"

namespace longseq::reference {

namespace {

constexpr double kInverseSqrt2 = 0.70710678118654752440;
constexpr double kInverseSqrt2Pi = 0.39894228040143267794;

double normal_cdf(double x) { return 0.5 * (1.0 + std::erf(x * kInverseSqrt2)); }
double normal_pdf(double x) { return kInverseSqrt2Pi * std::exp(-0.5 * x * x); }

}  // namespace

void gelu_forward(const Tensor& x, const Tensor& y) {
  const char* op = "reference::gelu_forward";
  check_shape(op, "y", y, x.shape());
  std::vector<double> values = values_of(op, x);
  for (double& value : values) {
    value *= normal_cdf(value);
  }
  store(op, y, values);
}

void gelu_backward(const Tensor& grad_y, const Tensor& x, const Tensor& grad_x) {
  const char* op = "reference::gelu_backward";
  check_shape(op, "grad_y", grad_y, x.shape());
  check_shape(op, "grad_x", grad_x, x.shape());
  const std::vector<double> x_values = values_of(op, x);
  std::vector<double> grad_values = values_of(op, grad_y);
  for (std::size_t i = 0; i < grad_values.size(); ++i) {
    grad_values[i] *= normal_cdf(x_values[i]) + x_values[i] * normal_pdf(x_values[i]);
  }
  store(op, grad_x, grad_values);
}

}  // namespace longseq::reference
