// Merging partial attention results computed over disjoint key sets (split K/V, ring steps) by
// their log-sum-exps:  LSE = log sum_s exp(LSE_s),  O = sum_s exp(LSE_s - LSE) O_s.
//
// Layouts (contiguous, fp32, all on one device):
//   outs[s]  (B, H, N, D)     lses[s]  (B, H, N)     out (B, H, N, D)     lse (B, H, N)
// A partial with LSE = -inf for a row (it saw no key) contributes nothing to that row.
#pragma once

#include <span>

#include "runtime/context.h"
#include "runtime/tensor.h"

namespace longseq {

void merge_attention_forward(ComputeContext& context, std::span<const Tensor> outs,
                             std::span<const Tensor> lses, const Tensor& out, const Tensor& lse);

// Given the gradients of the merged out (and optionally of the merged lse; undefined = 0),
// writes the gradients of every partial out and lse:
//   w_s = exp(LSE_s - LSE),  dO_s = w_s dO,  dLSE_s = w_s (<dO, O_s - O> + dLSE).
void merge_attention_backward(ComputeContext& context, const Tensor& grad_out,
                              const Tensor& grad_lse, std::span<const Tensor> outs,
                              std::span<const Tensor> lses, const Tensor& out, const Tensor& lse,
                              std::span<const Tensor> grad_outs, std::span<const Tensor> grad_lses);

}  // namespace longseq
