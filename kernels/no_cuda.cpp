// The CUDA operations in a build without CUDA: each says so. Keep in step with kernels/backends.h.
#include "kernels/backends.h"

namespace longseq::cuda {

namespace {

[[noreturn]] void not_built(const char* op) {
  throw UserError(fmt::format("[{}] longseq was not built with CUDA; use --device cpu", op));
}

}  // namespace

void flash_attention_forward(ComputeContext&, const AttentionShape&, const AttentionOptions&,
                             const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                             const Tensor&) {
  not_built("flash_attention_forward");
}
void flash_attention_backward(ComputeContext&, const AttentionShape&, const AttentionOptions&,
                              const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                              const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                              const Tensor&) {
  not_built("flash_attention_backward");
}
void softmax_attention_forward(ComputeContext&, const AttentionShape&, const AttentionOptions&,
                               const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                               const Tensor&) {
  not_built("softmax_attention_forward");
}
void softmax_attention_backward(ComputeContext&, const AttentionShape&, const AttentionOptions&,
                                const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                const Tensor&) {
  not_built("softmax_attention_backward");
}
void merge_attention_forward(ComputeContext&, std::span<const Tensor>, std::span<const Tensor>,
                             const Tensor&, const Tensor&) {
  not_built("merge_attention_forward");
}
void merge_attention_backward(ComputeContext&, const Tensor&, const Tensor&,
                              std::span<const Tensor>, std::span<const Tensor>, const Tensor&,
                              const Tensor&, std::span<const Tensor>, std::span<const Tensor>) {
  not_built("merge_attention_backward");
}
void linear_attention_forward(ComputeContext&, const LinearAttentionShape&, const Tensor&,
                              const Tensor&, const Tensor&, const Tensor&,
                              const LinearAttentionState&, const Tensor&,
                              const LinearAttentionState&) {
  not_built("linear_attention_forward");
}
void linear_attention_backward(ComputeContext&, const LinearAttentionShape&, const Tensor&,
                               const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                               const LinearAttentionState&, const LinearAttentionState&,
                               const Tensor&, const Tensor&, const Tensor&,
                               const LinearAttentionState&) {
  not_built("linear_attention_backward");
}
void linear_attention_step(ComputeContext&, const LinearAttentionShape&, const Tensor&,
                           const Tensor&, const Tensor&, const Tensor&, const LinearAttentionState&,
                           const Tensor&) {
  not_built("linear_attention_step");
}
void momentum_attention_forward(ComputeContext&, const MomentumAttentionShape&, const Tensor&,
                                const Tensor&, const Tensor&, const MomentumAttentionState&,
                                const Tensor&, const MomentumAttentionState&) {
  not_built("momentum_attention_forward");
}
void momentum_attention_backward(ComputeContext&, const MomentumAttentionShape&, const Tensor&,
                                 const Tensor&, const Tensor&, const Tensor&,
                                 const MomentumAttentionState&, const MomentumAttentionState&,
                                 const Tensor&, const Tensor&, const Tensor&,
                                 const MomentumAttentionState&) {
  not_built("momentum_attention_backward");
}
void momentum_attention_step(ComputeContext&, const MomentumAttentionShape&, const Tensor&,
                             const Tensor&, const Tensor&, const MomentumAttentionState&,
                             const Tensor&) {
  not_built("momentum_attention_step");
}
void diagonal_ssm_vandermonde_eval(ComputeContext&, const Tensor&, const Tensor&, const Tensor&,
                                   std::int64_t, bool, const Tensor&, bool) {
  not_built("diagonal_ssm_vandermonde_eval");
}
void diagonal_ssm_vandermonde_sums(ComputeContext&, const Tensor&, const Tensor&, std::int64_t,
                                   bool, const Tensor&, const Tensor&, const Tensor&) {
  not_built("diagonal_ssm_vandermonde_sums");
}
void gemm(ComputeContext&, const Tensor&, bool, const Tensor&, bool, const Tensor&, float, float) {
  not_built("gemm");
}
void layer_norm_forward(ComputeContext&, const Tensor&, const Tensor&, const Tensor&, float,
                        const Tensor&, const Tensor&, const Tensor&) {
  not_built("layer_norm_forward");
}
void layer_norm_backward(ComputeContext&, const Tensor&, const Tensor&, const Tensor&,
                         const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                         const Tensor&) {
  not_built("layer_norm_backward");
}
void rms_norm_forward(ComputeContext&, const Tensor&, const Tensor&, float, const Tensor&,
                      const Tensor&) {
  not_built("rms_norm_forward");
}
void rms_norm_backward(ComputeContext&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                       const Tensor&, const Tensor&) {
  not_built("rms_norm_backward");
}
void gelu_forward(ComputeContext&, const Tensor&, const Tensor&) { not_built("gelu_forward"); }
void gelu_backward(ComputeContext&, const Tensor&, const Tensor&, const Tensor&) {
  not_built("gelu_backward");
}
void cross_entropy_forward(ComputeContext&, const Tensor&, const Tensor&, const Tensor&,
                           const Tensor&) {
  not_built("cross_entropy_forward");
}
void cross_entropy_backward(ComputeContext&, const Tensor&, const Tensor&, const Tensor&,
                            const Tensor&, const Tensor&) {
  not_built("cross_entropy_backward");
}
void adamw_step(ComputeContext&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                const AdamWOptions&) {
  not_built("adamw_step");
}
void random_fill(ComputeContext&, const Tensor&, std::uint64_t, std::uint64_t, RandomDistribution,
                 float, float) {
  not_built("random_fill");
}
void s4_kernel(ComputeContext&, const S4Parameters&, const Tensor&) { not_built("s4_kernel"); }
void performer_feature_rows(ComputeContext&, const Tensor&, const Tensor&, const Tensor&) {
  not_built("performer_feature_rows");
}
void performer_feature_grad_rows(ComputeContext&, const Tensor&, const Tensor&, const Tensor&,
                                 const Tensor&, const Tensor&) {
  not_built("performer_feature_grad_rows");
}
void toeplitz_product(ComputeContext&, const ToeplitzShape&, const Tensor&, const Tensor&,
                      const Tensor&, bool) {
  not_built("toeplitz_product");
}
void toeplitz_product_backward(ComputeContext&, const ToeplitzShape&, const Tensor&, const Tensor&,
                               const Tensor&, const Tensor&, const Tensor&, bool) {
  not_built("toeplitz_product_backward");
}
void rpe_position_weights(ComputeContext&, const Tensor&, bool, std::int64_t, const Tensor&) {
  not_built("rpe_position_weights");
}
void rpe_position_weights_backward(ComputeContext&, const Tensor&, const Tensor&, std::int64_t,
                                   const Tensor&) {
  not_built("rpe_position_weights_backward");
}
void rpe_outer_columns(ComputeContext&, const RpeColumnBlock&, const Tensor&, const Tensor&,
                       const Tensor&) {
  not_built("rpe_outer_columns");
}
void rpe_contract_columns(ComputeContext&, const RpeColumnBlock&, const Tensor&, const Tensor&,
                          const Tensor&, const Tensor&, const Tensor&) {
  not_built("rpe_contract_columns");
}
void rpe_readout(ComputeContext&, const Tensor&, float, const Tensor&) { not_built("rpe_readout"); }
void rpe_readout_backward(ComputeContext&, const Tensor&, const Tensor&, float, const Tensor&) {
  not_built("rpe_readout_backward");
}

}  // namespace longseq::cuda
