// Softmax cross-entropy over the last dimension.
//   logits, grad_logits (R, V)      targets (R) i32, a negative target ignores the row (loss 0)
//   losses, lse, grad_losses (R) fp32
#pragma once

#include "runtime/context.h"
#include "runtime/tensor.h"

namespace longseq {

void cross_entropy_forward(ComputeContext& context, const Tensor& logits, const Tensor& targets,
                           const Tensor& losses, const Tensor& lse);
// grad_logits = grad_losses * (softmax(logits) - onehot(target)); 0 on ignored rows.
void cross_entropy_backward(ComputeContext& context, const Tensor& grad_losses,
                            const Tensor& logits, const Tensor& targets, const Tensor& lse,
                            const Tensor& grad_logits);

}  // namespace longseq
