#include "kernels/momentum_attention.h"

#include <cmath>

#include "kernels/backends.h"
#include "kernels/tensor_checks.h"

namespace longseq {

namespace {

// Validates q, k, v (the same dtype and device, (B, H, N, Dk) and (B, H, N, Dv)) and the options.
MomentumAttentionShape checked_shape(const char* op, const Tensor& q, const Tensor& k,
                                     const Tensor& v, const MomentumAttentionOptions& options) {
  LONGSEQ_CHECK(q.rank() == 4 && k.rank() == 4 && v.rank() == 4,
                "[{}] q, k, v must be (B, H, N, D), got {}, {}, {}", op, q.describe(), k.describe(),
                v.describe());
  MomentumAttentionShape shape;
  shape.batch = q.size(0);
  shape.heads = q.size(1);
  shape.length = q.size(2);
  shape.key_dim = q.size(3);
  shape.value_dim = v.size(3);
  shape.momentum = options.momentum;
  shape.step = options.step;
  shape.eps = options.eps;
  check_contiguous(op, "q", q);
  check_tensor(op, "k", k, q.shape(), q.dtype(), q.device());
  check_tensor(op, "v", v, {shape.batch, shape.heads, shape.length, shape.value_dim}, q.dtype(),
               q.device());
  require_backend_dtype(op, "q, k and v", q.dtype(), q.device());
  LONGSEQ_REQUIRE(options.eps > 0.0f, "[{}] eps must be positive, got {}", op, options.eps);
  LONGSEQ_REQUIRE(options.momentum >= 0.0f && options.momentum < 1.0f,
                  "[{}] momentum mu must be in [0, 1), got {}", op, options.momentum);
  LONGSEQ_REQUIRE(std::isfinite(options.step), "[{}] step gamma must be finite, got {}", op,
                  options.step);
  LONGSEQ_REQUIRE(
      shape.key_dim >= 1 && shape.key_dim <= 256 && shape.value_dim >= 1 && shape.value_dim <= 256,
      "[{}] head dims must be 1-256, got Dk = {} and Dv = {}", op, shape.key_dim, shape.value_dim);
  return shape;
}

// A state, if given, must be fp32 (B, H, Dk, Dv) twice and (B, H, Dk) on the device of the inputs.
void check_state(const char* op, const char* name, const MomentumAttentionState& state,
                 const MomentumAttentionShape& shape, Device device) {
  if (!state.defined()) {
    return;
  }
  const Shape matrix{shape.batch, shape.heads, shape.key_dim, shape.value_dim};
  check_tensor(op, name, state.c, matrix, DType::f32, device);
  check_tensor(op, name, state.d, matrix, DType::f32, device);
  check_tensor(op, name, state.z, {shape.batch, shape.heads, shape.key_dim}, DType::f32, device);
}

}  // namespace

void momentum_attention_forward(ComputeContext& context, const Tensor& q, const Tensor& k,
                                const Tensor& v, const MomentumAttentionOptions& options,
                                const MomentumAttentionState& initial, const Tensor& out,
                                const MomentumAttentionState& final) {
  constexpr const char* kOp = "momentum_attention_forward";
  const MomentumAttentionShape shape = checked_shape(kOp, q, k, v, options);
  check_state(kOp, "initial", initial, shape, q.device());
  check_state(kOp, "final", final, shape, q.device());
  if (out.defined()) {
    check_like(kOp, "out", out, v);
  }
  const auto kernel = q.device() == Device::cpu ? cpu::momentum_attention_forward
                                                : cuda::momentum_attention_forward;
  kernel(context, shape, q, k, v, initial, out, final);
}

void momentum_attention_backward(ComputeContext& context, const Tensor& q, const Tensor& k,
                                 const Tensor& v, const Tensor& grad_out,
                                 const MomentumAttentionOptions& options,
                                 const MomentumAttentionState& initial,
                                 const MomentumAttentionState& grad_final, const Tensor& grad_q,
                                 const Tensor& grad_k, const Tensor& grad_v,
                                 const MomentumAttentionState& grad_initial) {
  constexpr const char* kOp = "momentum_attention_backward";
  const MomentumAttentionShape shape = checked_shape(kOp, q, k, v, options);
  check_like(kOp, "grad_out", grad_out, v);
  check_state(kOp, "initial", initial, shape, q.device());
  check_state(kOp, "grad_final", grad_final, shape, q.device());
  check_state(kOp, "grad_initial", grad_initial, shape, q.device());
  if (grad_q.defined()) {
    check_like(kOp, "grad_q", grad_q, q);
  }
  LONGSEQ_CHECK(grad_k.defined() == grad_v.defined(),
                "[{}] grad_k and grad_v are wanted together or not at all", kOp);
  if (grad_k.defined()) {
    check_like(kOp, "grad_k", grad_k, k);
    check_like(kOp, "grad_v", grad_v, v);
  }
  const auto kernel = q.device() == Device::cpu ? cpu::momentum_attention_backward
                                                : cuda::momentum_attention_backward;
  kernel(context, shape, q, k, v, grad_out, initial, grad_final, grad_q, grad_k, grad_v,
         grad_initial);
}

void momentum_attention_step(ComputeContext& context, const Tensor& q, const Tensor& k,
                             const Tensor& v, const MomentumAttentionOptions& options,
                             const MomentumAttentionState& state, const Tensor& out) {
  constexpr const char* kOp = "momentum_attention_step";
  LONGSEQ_CHECK(q.rank() == 3 && v.rank() == 3, "[{}] q, k must be (B, H, Dk), v (B, H, Dv)", kOp);
  // The single token seen as a sequence of length 1.
  const MomentumAttentionShape shape =
      checked_shape(kOp, q.reshape({q.size(0), q.size(1), 1, q.size(2)}),
                    k.reshape({k.size(0), k.size(1), 1, k.size(-1)}),
                    v.reshape({v.size(0), v.size(1), 1, v.size(2)}), options);
  LONGSEQ_CHECK(state.defined(), "[{}] needs a state to update", kOp);
  check_state(kOp, "state", state, shape, q.device());
  check_like(kOp, "out", out, v);
  const auto kernel =
      q.device() == Device::cpu ? cpu::momentum_attention_step : cuda::momentum_attention_step;
  kernel(context, shape, q, k, v, state, out);
}

double momentum_attention_forward_flops(const MomentumAttentionShape& shape) {
  const double heads = static_cast<double>(shape.batch * shape.heads);
  const double n = static_cast<double>(shape.length);
  const double dk = static_cast<double>(shape.key_dim);
  const double dv = static_cast<double>(shape.value_dim);
  const double chunk = static_cast<double>(kMomentumAttentionChunk);
  return heads * 2.0 * n * (chunk * (dk + dv) + 4.0 * dk * dv);
}

double momentum_attention_backward_flops(const MomentumAttentionShape& shape) {
  const double heads = static_cast<double>(shape.batch * shape.heads);
  const double n = static_cast<double>(shape.length);
  const double dk = static_cast<double>(shape.key_dim);
  const double dv = static_cast<double>(shape.value_dim);
  const double chunk = static_cast<double>(kMomentumAttentionChunk);
  return heads * 4.0 * n * (2.0 * chunk * (dk + dv) + 6.0 * dk * dv);
}

}  // namespace longseq
