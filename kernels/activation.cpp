#include "kernels/activation.h"

#include "kernels/backends.h"

namespace longseq {

namespace {

void check_input(const char* op, const Tensor& x) {
  LONGSEQ_CHECK(x.is_contiguous(), "[{}] x must be contiguous, got {}", op, x.describe());
  if (x.device() == Device::cpu) {
    LONGSEQ_REQUIRE(x.dtype() == DType::f32, "[{}] the CPU implementation takes fp32, got {}", op,
                    dtype_name(x.dtype()));
  } else {
    LONGSEQ_REQUIRE(x.dtype() == DType::f32 || x.dtype() == DType::bf16 || x.dtype() == DType::f16,
                    "[{}] the CUDA implementation takes fp32, bf16 or fp16, got {}", op,
                    dtype_name(x.dtype()));
  }
}

void check_like_input(const char* op, const char* name, const Tensor& tensor, const Tensor& x) {
  LONGSEQ_CHECK(tensor.shape() == x.shape() && tensor.dtype() == x.dtype() &&
                    tensor.device() == x.device() && tensor.is_contiguous(),
                "[{}] {} must be contiguous and match x ({}), got {}", op, name, x.describe(),
                tensor.describe());
}

}  // namespace

void gelu_forward(ComputeContext& context, const Tensor& x, const Tensor& y) {
  constexpr const char* op = "gelu_forward";
  check_input(op, x);
  check_like_input(op, "y", y, x);
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
  check_like_input(op, "grad_y", grad_y, x);
  check_like_input(op, "grad_x", grad_x, x);
  if (x.device() == Device::cpu) {
    cpu::gelu_backward(context, grad_y, x, grad_x);
  } else {
    cuda::gelu_backward(context, grad_y, x, grad_x);
  }
}

}  // namespace longseq
