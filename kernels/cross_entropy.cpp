#include "kernels/cross_entropy.h"

#include "kernels/backends.h"

namespace longseq {

namespace {

void check_tensor(const char* op, const char* name, const Tensor& tensor, const Shape& shape,
                  DType dtype, Device device) {
  LONGSEQ_CHECK(tensor.shape() == shape && tensor.dtype() == dtype && tensor.device() == device &&
                    tensor.is_contiguous(),
                "[{}] {} must be a contiguous {} {} {}, got {}", op, name, shape_string(shape),
                dtype_name(dtype), device_name(device), tensor.describe());
}

// Checks logits (R, V), their supported dtype, and targets (R) i32.
void check_logits_and_targets(const char* op, const Tensor& logits, const Tensor& targets) {
  LONGSEQ_CHECK(logits.rank() == 2 && logits.size(1) >= 1 && logits.is_contiguous(),
                "[{}] logits must be a contiguous (R, V) tensor with V >= 1, got {}", op,
                logits.describe());
  if (logits.device() == Device::cpu) {
    LONGSEQ_REQUIRE(logits.dtype() == DType::f32,
                    "[{}] the CPU implementation takes fp32 logits, got {}", op,
                    dtype_name(logits.dtype()));
  } else {
    LONGSEQ_REQUIRE(logits.dtype() == DType::f32 || logits.dtype() == DType::bf16 ||
                        logits.dtype() == DType::f16,
                    "[{}] the CUDA implementation takes fp32, bf16 or fp16 logits, got {}", op,
                    dtype_name(logits.dtype()));
  }
  check_tensor(op, "targets", targets, {logits.size(0)}, DType::i32, logits.device());
}

void check_row_values(const char* op, const char* name, const Tensor& tensor,
                      const Tensor& logits) {
  check_tensor(op, name, tensor, {logits.size(0)}, DType::f32, logits.device());
}

}  // namespace

void cross_entropy_forward(ComputeContext& context, const Tensor& logits, const Tensor& targets,
                           const Tensor& losses, const Tensor& lse) {
  constexpr const char* op = "cross_entropy_forward";
  check_logits_and_targets(op, logits, targets);
  check_row_values(op, "losses", losses, logits);
  check_row_values(op, "lse", lse, logits);
  if (logits.device() == Device::cpu) {
    cpu::cross_entropy_forward(context, logits, targets, losses, lse);
  } else {
    cuda::cross_entropy_forward(context, logits, targets, losses, lse);
  }
}

void cross_entropy_backward(ComputeContext& context, const Tensor& grad_losses,
                            const Tensor& logits, const Tensor& targets, const Tensor& lse,
                            const Tensor& grad_logits) {
  constexpr const char* op = "cross_entropy_backward";
  check_logits_and_targets(op, logits, targets);
  check_row_values(op, "grad_losses", grad_losses, logits);
  check_row_values(op, "lse", lse, logits);
  check_tensor(op, "grad_logits", grad_logits, logits.shape(), logits.dtype(), logits.device());
  if (logits.device() == Device::cpu) {
    cpu::cross_entropy_backward(context, grad_losses, logits, targets, lse, grad_logits);
  } else {
    cuda::cross_entropy_backward(context, grad_losses, logits, targets, lse, grad_logits);
  }
}

}  // namespace longseq
