#include "kernels/norm.h"

#include "kernels/backends.h"
#include "kernels/tensor_checks.h"

namespace longseq {

namespace {

// Checks x (R, C) and the supported dtype of its device; returns R.
std::int64_t check_input(const char* op, const Tensor& x) {
  LONGSEQ_CHECK(x.rank() == 2 && x.size(1) >= 1 && x.is_contiguous(),
                "[{}] x must be a contiguous (R, C) tensor with C >= 1, got {}", op, x.describe());
  require_backend_dtype(op, "x", x.dtype(), x.device());
  return x.size(0);
}

// Parameters (C) and statistics (R) are fp32 on the device of x whatever the activation dtype.
void check_parameter(const char* op, const char* name, const Tensor& tensor, const Tensor& x) {
  check_tensor(op, name, tensor, {x.size(1)}, DType::f32, x.device());
}

void check_statistic(const char* op, const char* name, const Tensor& tensor, const Tensor& x) {
  check_tensor(op, name, tensor, {x.size(0)}, DType::f32, x.device());
}

void check_eps(const char* op, float eps) {
  LONGSEQ_REQUIRE(eps > 0.0f, "[{}] eps must be positive, got {}", op, eps);
}

}  // namespace

void layer_norm_forward(ComputeContext& context, const Tensor& x, const Tensor& gamma,
                        const Tensor& beta, float eps, const Tensor& y, const Tensor& mean,
                        const Tensor& rstd) {
  constexpr const char* op = "layer_norm_forward";
  check_input(op, x);
  check_eps(op, eps);
  check_parameter(op, "gamma", gamma, x);
  check_parameter(op, "beta", beta, x);
  check_like(op, "y", y, x);
  check_statistic(op, "mean", mean, x);
  check_statistic(op, "rstd", rstd, x);
  if (x.device() == Device::cpu) {
    cpu::layer_norm_forward(context, x, gamma, beta, eps, y, mean, rstd);
  } else {
    cuda::layer_norm_forward(context, x, gamma, beta, eps, y, mean, rstd);
  }
}

void layer_norm_backward(ComputeContext& context, const Tensor& grad_y, const Tensor& x,
                         const Tensor& gamma, const Tensor& mean, const Tensor& rstd,
                         const Tensor& grad_x, const Tensor& grad_gamma, const Tensor& grad_beta) {
  constexpr const char* op = "layer_norm_backward";
  check_input(op, x);
  check_like(op, "grad_y", grad_y, x);
  check_parameter(op, "gamma", gamma, x);
  check_statistic(op, "mean", mean, x);
  check_statistic(op, "rstd", rstd, x);
  check_like(op, "grad_x", grad_x, x);
  check_parameter(op, "grad_gamma", grad_gamma, x);
  check_parameter(op, "grad_beta", grad_beta, x);
  if (x.device() == Device::cpu) {
    cpu::layer_norm_backward(context, grad_y, x, gamma, mean, rstd, grad_x, grad_gamma, grad_beta);
  } else {
    cuda::layer_norm_backward(context, grad_y, x, gamma, mean, rstd, grad_x, grad_gamma, grad_beta);
  }
}

void rms_norm_forward(ComputeContext& context, const Tensor& x, const Tensor& gamma, float eps,
                      const Tensor& y, const Tensor& rstd) {
  constexpr const char* op = "rms_norm_forward";
  check_input(op, x);
  check_eps(op, eps);
  check_parameter(op, "gamma", gamma, x);
  check_like(op, "y", y, x);
  check_statistic(op, "rstd", rstd, x);
  if (x.device() == Device::cpu) {
    cpu::rms_norm_forward(context, x, gamma, eps, y, rstd);
  } else {
    cuda::rms_norm_forward(context, x, gamma, eps, y, rstd);
  }
}

void rms_norm_backward(ComputeContext& context, const Tensor& grad_y, const Tensor& x,
                       const Tensor& gamma, const Tensor& rstd, const Tensor& grad_x,
                       const Tensor& grad_gamma) {
  constexpr const char* op = "rms_norm_backward";
  check_input(op, x);
  check_like(op, "grad_y", grad_y, x);
  check_parameter(op, "gamma", gamma, x);
  check_statistic(op, "rstd", rstd, x);
  check_like(op, "grad_x", grad_x, x);
  check_parameter(op, "grad_gamma", grad_gamma, x);
  if (x.device() == Device::cpu) {
    cpu::rms_norm_backward(context, grad_y, x, gamma, rstd, grad_x, grad_gamma);
  } else {
    cuda::rms_norm_backward(context, grad_y, x, gamma, rstd, grad_x, grad_gamma);
  }
}

}  // namespace longseq
