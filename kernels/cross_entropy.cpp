#include "kernels/cross_entropy.h"

#include "kernels/backends.h"
#include "kernels/tensor_checks.h"

namespace longseq {

namespace {

// Checks logits (R, V), their supported dtype, and targets (R) i32.
void check_logits_and_targets(const char* op, const Tensor& logits, const Tensor& targets) {
  LONGSEQ_CHECK(logits.rank() == 2 && logits.size(1) >= 1 && logits.is_contiguous(),
                "[{}] logits must be a contiguous (R, V) tensor with V >= 1, got {}", op,
                logits.describe());
  require_backend_dtype(op, "logits", logits.dtype(), logits.device());
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
  check_like(op, "grad_logits", grad_logits, logits);
  if (logits.device() == Device::cpu) {
    cpu::cross_entropy_backward(context, grad_losses, logits, targets, lse, grad_logits);
  } else {
    cuda::cross_entropy_backward(context, grad_losses, logits, targets, lse, grad_logits);
  }
}

}  // namespace longseq
