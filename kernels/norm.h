// Layer norm and RMS norm over the last dimension.
//   x, y, grad_x, grad_y  (R, C)     gamma, beta, grad_gamma, grad_beta  (C)
//   mean, rstd            (R) fp32, saved by forward for backward
// fp32 on the CPU; fp32 / bf16 / fp16 activations with fp32 parameters and statistics on CUDA.
#pragma once

#include "runtime/context.h"
#include "runtime/tensor.h"

namespace longseq {

void layer_norm_forward(ComputeContext& context, const Tensor& x, const Tensor& gamma,
                        const Tensor& beta, float eps, const Tensor& y, const Tensor& mean,
                        const Tensor& rstd);
// grad_gamma and grad_beta are overwritten (not accumulated).
void layer_norm_backward(ComputeContext& context, const Tensor& grad_y, const Tensor& x,
                         const Tensor& gamma, const Tensor& mean, const Tensor& rstd,
                         const Tensor& grad_x, const Tensor& grad_gamma, const Tensor& grad_beta);

void rms_norm_forward(ComputeContext& context, const Tensor& x, const Tensor& gamma, float eps,
                      const Tensor& y, const Tensor& rstd);
void rms_norm_backward(ComputeContext& context, const Tensor& grad_y, const Tensor& x,
                       const Tensor& gamma, const Tensor& rstd, const Tensor& grad_x,
                       const Tensor& grad_gamma);

}  // namespace longseq
