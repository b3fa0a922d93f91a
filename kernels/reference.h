// Plain-loop references of every operation, accumulating in double. They take CPU tensors of any
// floating dtype (fp64 tensors give an fp64 reference, used for finite-difference gradients) and
// write outputs in the output tensors' dtype. Used by tests only; clarity over speed.
#pragma once

#include <span>

#include "kernels/adamw.h"
#include "kernels/attention.h"
#include "kernels/linear_attention.h"
#include "runtime/tensor.h"

namespace longseq::reference {

// Softmax attention with the full contract of kernels/attention.h (GQA, causal offsets, block
// mask).
void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                       const AttentionOptions& options, const Tensor& out, const Tensor& lse);
void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& grad_out,
                        const AttentionOptions& options, const Tensor& grad_q, const Tensor& grad_k,
                        const Tensor& grad_v);

void merge_attention_forward(std::span<const Tensor> outs, std::span<const Tensor> lses,
                             const Tensor& out, const Tensor& lse);
void merge_attention_backward(const Tensor& grad_out, const Tensor& grad_lse,
                              std::span<const Tensor> outs, std::span<const Tensor> lses,
                              std::span<const Tensor> grad_outs, std::span<const Tensor> grad_lses);

// Linear attention in its quadratic ("parallel") form: out_i = (phi(q_i)^T S_in + sum_j
// (phi(q_i) . phi(k_j)) v_j) / (phi(q_i)^T z_in + sum_j phi(q_i) . phi(k_j) + eps) over the visible
// j, so it shares no code path with the scans. States as in kernels/linear_attention.h (any
// floating dtype here); undefined inputs are zero, undefined outputs are skipped.
void linear_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                              const LinearAttentionOptions& options,
                              const LinearAttentionState& initial, const Tensor& out,
                              const LinearAttentionState& final);
void linear_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                               const Tensor& grad_out, const LinearAttentionOptions& options,
                               const LinearAttentionState& initial,
                               const LinearAttentionState& grad_final, const Tensor& grad_q,
                               const Tensor& grad_k, const Tensor& grad_v,
                               const LinearAttentionState& grad_initial);

void gemm(const Tensor& a, bool transpose_a, const Tensor& b, bool transpose_b, const Tensor& c,
          float alpha, float beta);

void layer_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                        const Tensor& y);
void layer_norm_backward(const Tensor& grad_y, const Tensor& x, const Tensor& gamma, float eps,
                         const Tensor& grad_x, const Tensor& grad_gamma, const Tensor& grad_beta);
void rms_norm_forward(const Tensor& x, const Tensor& gamma, float eps, const Tensor& y);
void rms_norm_backward(const Tensor& grad_y, const Tensor& x, const Tensor& gamma, float eps,
                       const Tensor& grad_x, const Tensor& grad_gamma);

void gelu_forward(const Tensor& x, const Tensor& y);
void gelu_backward(const Tensor& grad_y, const Tensor& x, const Tensor& grad_x);

void cross_entropy_forward(const Tensor& logits, const Tensor& targets, const Tensor& losses);
void cross_entropy_backward(const Tensor& grad_losses, const Tensor& logits, const Tensor& targets,
                            const Tensor& grad_logits);

void adamw_step(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,
                const AdamWOptions& options);

}  // namespace longseq::reference
