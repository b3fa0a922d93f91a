#include "kernels/merge.h"

#include "kernels/backends.h"
#include "kernels/tensor_checks.h"

namespace longseq {

namespace {

// Checks the partials against the merged out (B, H, N, D) and lse (B, H, N).
void check_partials(const char* op, std::span<const Tensor> outs, std::span<const Tensor> lses,
                    const Tensor& out, const Tensor& lse) {
  LONGSEQ_CHECK(out.rank() == 4, "[{}] out must be (B, H, N, D), got {}", op, out.describe());
  const Shape lse_shape{out.size(0), out.size(1), out.size(2)};
  check_tensor(op, "out", out, out.shape(), DType::f32, out.device());
  check_tensor(op, "lse", lse, lse_shape, DType::f32, out.device());
  LONGSEQ_CHECK(!outs.empty() && outs.size() == lses.size(),
                "[{}] needs one or more partials with one lse each, got {} outs and {} lses", op,
                outs.size(), lses.size());
  for (std::size_t s = 0; s < outs.size(); ++s) {
    check_tensor(op, fmt::format("outs[{}]", s), outs[s], out.shape(), DType::f32, out.device());
    check_tensor(op, fmt::format("lses[{}]", s), lses[s], lse_shape, DType::f32, out.device());
  }
}

}  // namespace

void merge_attention_forward(ComputeContext& context, std::span<const Tensor> outs,
                             std::span<const Tensor> lses, const Tensor& out, const Tensor& lse) {
  check_partials("merge_attention_forward", outs, lses, out, lse);
  if (out.device() == Device::cpu) {
    cpu::merge_attention_forward(context, outs, lses, out, lse);
  } else {
    cuda::merge_attention_forward(context, outs, lses, out, lse);
  }
}

void merge_attention_backward(ComputeContext& context, const Tensor& grad_out,
                              const Tensor& grad_lse, std::span<const Tensor> outs,
                              std::span<const Tensor> lses, const Tensor& out, const Tensor& lse,
                              std::span<const Tensor> grad_outs,
                              std::span<const Tensor> grad_lses) {
  const char* op = "merge_attention_backward";
  check_partials(op, outs, lses, out, lse);
  check_tensor(op, "grad_out", grad_out, out.shape(), DType::f32, out.device());
  if (grad_lse.defined()) {
    check_tensor(op, "grad_lse", grad_lse, lse.shape(), DType::f32, out.device());
  }
  LONGSEQ_CHECK(grad_outs.size() == outs.size() && grad_lses.size() == outs.size(),
                "[{}] needs one grad_out and one grad_lse per partial ({}), got {} and {}", op,
                outs.size(), grad_outs.size(), grad_lses.size());
  for (std::size_t s = 0; s < outs.size(); ++s) {
    check_tensor(op, fmt::format("grad_outs[{}]", s), grad_outs[s], out.shape(), DType::f32,
                 out.device());
    check_tensor(op, fmt::format("grad_lses[{}]", s), grad_lses[s], lse.shape(), DType::f32,
                 out.device());
  }
  if (out.device() == Device::cpu) {
    cpu::merge_attention_backward(context, grad_out, grad_lse, outs, lses, out, lse, grad_outs,
                                  grad_lses);
  } else {
    cuda::merge_attention_backward(context, grad_out, grad_lse, outs, lses, out, lse, grad_outs,
                                   grad_lses);
  }
}

}  // namespace longseq
