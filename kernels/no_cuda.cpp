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
                              const Tensor&, const Tensor&, const LinearAttentionState&,
                              const Tensor&, const LinearAttentionState&) {
  not_built("linear_attention_forward");
}
void linear_attention_backward(ComputeContext&, const LinearAttentionShape&, const Tensor&,
                               const Tensor&, const Tensor&, const Tensor&,
                               const LinearAttentionState&, const LinearAttentionState&,
                               const Tensor&, const Tensor&, const Tensor&,
                               const LinearAttentionState&) {
  not_built("linear_attention_backward");
}
void linear_attention_step(ComputeContext&, const LinearAttentionShape&, const Tensor&,
                           const Tensor&, const Tensor&, const LinearAttentionState&,
                           const Tensor&) {
  not_built("linear_attention_step");
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

}  // namespace longseq::cuda
