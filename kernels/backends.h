// The per-backend implementations behind the operation headers. The dispatchers in kernels/*.cpp
// validate shapes, then call cpu:: or cuda:: by the tensors' device. kernels/cpu/ implements cpu::,
// kernels/cuda/ implements cuda:: (kernels/no_cuda.cpp throws "not built with CUDA" instead).
//
// How to add an operation: declare it in a kernels/<op>.h header, validate and dispatch in
// kernels/<op>.cpp, declare the same signature in both namespaces here, implement it in
// kernels/cpu/<op>.cpp, kernels/cuda/<op>.cu and kernels/reference/<op>.cpp, stub it in
// kernels/no_cuda.cpp, and add a case to tests/kernels/ (the backend-comparison harness).
#pragma once

#include <span>

#include "kernels/adamw.h"
#include "kernels/attention.h"
#include "kernels/common/random_fill.h"
#include "kernels/diagonal_ssm.h"
#include "kernels/linear_attention.h"
#include "kernels/momentum_attention.h"
#include "kernels/rpe_attention.h"
#include "kernels/s4.h"
#include "kernels/toeplitz.h"
#include "runtime/context.h"
#include "runtime/tensor.h"

namespace longseq {

#define LONGSEQ_DECLARE_BACKEND_OPERATIONS                                                         \
  void flash_attention_forward(ComputeContext& context, const AttentionShape& shape,               \
                               const AttentionOptions& options, const Tensor& q, const Tensor& k,  \
                               const Tensor& v, const Tensor& out, const Tensor& lse);             \
  void flash_attention_backward(                                                                   \
      ComputeContext& context, const AttentionShape& shape, const AttentionOptions& options,       \
      const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,     \
      const Tensor& grad_out, const Tensor& grad_q, const Tensor& grad_k, const Tensor& grad_v);   \
  void softmax_attention_forward(                                                                  \
      ComputeContext& context, const AttentionShape& shape, const AttentionOptions& options,       \
      const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse);    \
  void softmax_attention_backward(                                                                 \
      ComputeContext& context, const AttentionShape& shape, const AttentionOptions& options,       \
      const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,     \
      const Tensor& grad_out, const Tensor& grad_q, const Tensor& grad_k, const Tensor& grad_v);   \
  void merge_attention_forward(ComputeContext& context, std::span<const Tensor> outs,              \
                               std::span<const Tensor> lses, const Tensor& out,                    \
                               const Tensor& lse);                                                 \
  void merge_attention_backward(                                                                   \
      ComputeContext& context, const Tensor& grad_out, const Tensor& grad_lse,                     \
      std::span<const Tensor> outs, std::span<const Tensor> lses, const Tensor& out,               \
      const Tensor& lse, std::span<const Tensor> grad_outs, std::span<const Tensor> grad_lses);    \
  void linear_attention_forward(ComputeContext& context, const LinearAttentionShape& shape,        \
                                const Tensor& q, const Tensor& k, const Tensor& v,                 \
                                const Tensor& key_log_scale, const LinearAttentionState& initial,  \
                                const Tensor& out, const LinearAttentionState& final);             \
  void linear_attention_backward(                                                                  \
      ComputeContext& context, const LinearAttentionShape& shape, const Tensor& q,                 \
      const Tensor& k, const Tensor& v, const Tensor& key_log_scale, const Tensor& grad_out,       \
      const LinearAttentionState& initial, const LinearAttentionState& grad_final,                 \
      const Tensor& grad_q, const Tensor& grad_k, const Tensor& grad_v,                            \
      const LinearAttentionState& grad_initial);                                                   \
  void linear_attention_step(ComputeContext& context, const LinearAttentionShape& shape,           \
                             const Tensor& q, const Tensor& k, const Tensor& v,                    \
                             const Tensor& key_log_scale, const LinearAttentionState& state,       \
                             const Tensor& out);                                                   \
  void momentum_attention_forward(ComputeContext& context, const MomentumAttentionShape& shape,    \
                                  const Tensor& q, const Tensor& k, const Tensor& v,               \
                                  const MomentumAttentionState& initial, const Tensor& out,        \
                                  const MomentumAttentionState& final);                            \
  void momentum_attention_backward(ComputeContext& context, const MomentumAttentionShape& shape,   \
                                   const Tensor& q, const Tensor& k, const Tensor& v,              \
                                   const Tensor& grad_out, const MomentumAttentionState& initial,  \
                                   const MomentumAttentionState& grad_final, const Tensor& grad_q, \
                                   const Tensor& grad_k, const Tensor& grad_v,                     \
                                   const MomentumAttentionState& grad_initial);                    \
  void momentum_attention_step(ComputeContext& context, const MomentumAttentionShape& shape,       \
                               const Tensor& q, const Tensor& k, const Tensor& v,                  \
                               const MomentumAttentionState& state, const Tensor& out);            \
  void diagonal_ssm_vandermonde_eval(ComputeContext& context, const Tensor& modes,                 \
                                     const Tensor& coefficients, const Tensor& direct,             \
                                     std::int64_t length, bool reversed, const Tensor& out,        \
                                     bool accumulate);                                             \
  void diagonal_ssm_vandermonde_sums(                                                              \
      ComputeContext& context, const Tensor& modes, const Tensor& signal, std::int64_t length,     \
      bool reversed, const Tensor& sums, const Tensor& weighted_sums, const Tensor& first);        \
  void gemm(ComputeContext& context, const Tensor& a, bool transpose_a, const Tensor& b,           \
            bool transpose_b, const Tensor& c, float alpha, float beta);                           \
  void layer_norm_forward(ComputeContext& context, const Tensor& x, const Tensor& gamma,           \
                          const Tensor& beta, float eps, const Tensor& y, const Tensor& mean,      \
                          const Tensor& rstd);                                                     \
  void layer_norm_backward(ComputeContext& context, const Tensor& grad_y, const Tensor& x,         \
                           const Tensor& gamma, const Tensor& mean, const Tensor& rstd,            \
                           const Tensor& grad_x, const Tensor& grad_gamma,                         \
                           const Tensor& grad_beta);                                               \
  void rms_norm_forward(ComputeContext& context, const Tensor& x, const Tensor& gamma, float eps,  \
                        const Tensor& y, const Tensor& rstd);                                      \
  void rms_norm_backward(ComputeContext& context, const Tensor& grad_y, const Tensor& x,           \
                         const Tensor& gamma, const Tensor& rstd, const Tensor& grad_x,            \
                         const Tensor& grad_gamma);                                                \
  void gelu_forward(ComputeContext& context, const Tensor& x, const Tensor& y);                    \
  void gelu_backward(ComputeContext& context, const Tensor& grad_y, const Tensor& x,               \
                     const Tensor& grad_x);                                                        \
  void cross_entropy_forward(ComputeContext& context, const Tensor& logits, const Tensor& targets, \
                             const Tensor& losses, const Tensor& lse);                             \
  void cross_entropy_backward(ComputeContext& context, const Tensor& grad_losses,                  \
                              const Tensor& logits, const Tensor& targets, const Tensor& lse,      \
                              const Tensor& grad_logits);                                          \
  void adamw_step(ComputeContext& context, const Tensor& param, const Tensor& grad,                \
                  const Tensor& m, const Tensor& v, const AdamWOptions& options);                  \
  void random_fill(ComputeContext& context, const Tensor& tensor, std::uint64_t seed,              \
                   std::uint64_t stream, RandomDistribution distribution, float a, float b);       \
  void s4_kernel(ComputeContext& context, const S4Parameters& parameters, const Tensor& kernel);   \
  void performer_feature_rows(ComputeContext& context, const Tensor& x, const Tensor& features,    \
                              const Tensor& log_scale);                                            \
  void performer_feature_grad_rows(ComputeContext& context, const Tensor& x,                       \
                                   const Tensor& features, const Tensor& grad_features,            \
                                   const Tensor& grad_logits, const Tensor& grad_x);               \
  void toeplitz_product(ComputeContext& context, const ToeplitzShape& shape, const Tensor& t,      \
                        const Tensor& x, const Tensor& y, bool accumulate);                        \
  void toeplitz_product_backward(ComputeContext& context, const ToeplitzShape& shape,              \
                                 const Tensor& t, const Tensor& x, const Tensor& grad_y,           \
                                 const Tensor& grad_x, const Tensor& grad_t, bool accumulate);     \
  void rpe_position_weights(ComputeContext& context, const Tensor& b, bool causal,                 \
                            std::int64_t first, const Tensor& weights);                            \
  void rpe_position_weights_backward(ComputeContext& context, const Tensor& weights,               \
                                     const Tensor& grad_weights, std::int64_t first,               \
                                     const Tensor& grad_b);                                        \
  void rpe_outer_columns(ComputeContext& context, const RpeColumnBlock& block, const Tensor& rows, \
                         const Tensor& values, const Tensor& columns);                             \
  void rpe_contract_columns(ComputeContext& context, const RpeColumnBlock& block,                  \
                            const Tensor& rows, const Tensor& values, const Tensor& columns,       \
                            const Tensor& grad_rows, const Tensor& out_values);                    \
  void rpe_readout(ComputeContext& context, const Tensor& numerator, float eps,                    \
                   const Tensor& out);                                                             \
  void rpe_readout_backward(ComputeContext& context, const Tensor& numerator,                      \
                            const Tensor& grad_out, float eps, const Tensor& readout_grad);

namespace cpu {
LONGSEQ_DECLARE_BACKEND_OPERATIONS
}  // namespace cpu

namespace cuda {
LONGSEQ_DECLARE_BACKEND_OPERATIONS
}  // namespace cuda

#undef LONGSEQ_DECLARE_BACKEND_OPERATIONS

}  // namespace longseq
