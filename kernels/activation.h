// GELU, exact form: gelu(x) = x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)). Any shape, contiguous.
#pragma once

#include "runtime/context.h"
#include "runtime/tensor.h"

namespace longseq {

void gelu_forward(ComputeContext& context, const Tensor& x, const Tensor& y);
void gelu_backward(ComputeContext& context, const Tensor& grad_y, const Tensor& x,
                   const Tensor& grad_x);

}  // namespace longseq
