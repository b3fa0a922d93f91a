// Reference momentum attention (kernels/momentum_attention.h) in its quadratic ("parallel") form,
// in double: out_i = (a phi(q_i)^T (C_in - mu^(i+2) D_in) + sum_{j <= i} w_{i-j} (phi(q_i) .
// phi(k_j)) v_j) / (phi(q_i)^T z_in + sum_{j <= i} phi(q_i) . phi(k_j) + eps), with
// w_d = gamma (1 + mu + ... + mu^d) and a = gamma / (1 - mu). It shares no code path with the
// scans. CPU tensors of any floating dtype; undefined inputs are zero, undefined outputs skipped.
#pragma once

#include "kernels/momentum_attention.h"
#include "runtime/tensor.h"

namespace longseq::reference {

void momentum_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                const MomentumAttentionOptions& options,
                                const MomentumAttentionState& initial, const Tensor& out,
                                const MomentumAttentionState& final);
void momentum_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                 const Tensor& grad_out, const MomentumAttentionOptions& options,
                                 const MomentumAttentionState& initial,
                                 const MomentumAttentionState& grad_final, const Tensor& grad_q,
                                 const Tensor& grad_k, const Tensor& grad_v,
                                 const MomentumAttentionState& grad_initial);

}  // namespace longseq::reference
