#include "kernels/activation.h"

#include "kernels/backends.h"
#include "kernels/tensor_checks.h"

namespace longseq {

namespace {

void check_input(const char* op, const Tensor& x) {
  check_contiguous(op, "x", x);
  require_backend_dtype(op, "x", x.dtype(), x.device());
}

}  // namespace

void gelu_forward(ComputeContext& context, const Tensor& x, const Tensor& y) {
  constexpr const char* op = "gelu_forward";
  check_input(op, x);
  check_like(op, "y", y, x);
  if (x.device() == Device::cpu) {
    cpu::gelu_forward(context, x, y);
  } else {
    cuda::gelu_forward(context, x, y);
  }
}

void gelu_backward(ComputeContext& context, const Tensor& grad_y, const Tensor& x,
                   const Tensor& grad_x) {
  constexpr const char* op = "gelu_backward";
  check_input(op, x);
  check_like(op, "grad_y", grad_y, x);
  check_like(op, "grad_x", grad_x, x);
  if (x.device() == Device::cpu) {
    cpu::gelu_backward(context, grad_y, x, grad_x);
  } else {
    cuda::gelu_backward(context, grad_y, x, grad_x);
  }
}

}  // namespace longseq
