#include "kernels/linear_attention.h"

#include "kernels/backends.h"
#include "kernels/tensor_checks.h"

namespace longseq {

namespace {

// Validates q, k, v (the same dtype and device, (B, H, N, Dk) and (B, H, N, Dv)) and the options.
LinearAttentionShape checked_shape(const char* op, const Tensor& q, const Tensor& k,
                                   const Tensor& v, const LinearAttentionOptions& options) {
  LONGSEQ_CHECK(q.rank() == 4 && k.rank() == 4 && v.rank() == 4,
                "[{}] q, k, v must be (B, H, N, D), got {}, {}, {}", op, q.describe(), k.describe(),
                v.describe());
  LinearAttentionShape shape;
  shape.batch = q.size(0);
  shape.heads = q.size(1);
  shape.length = q.size(2);
  shape.key_dim = q.size(3);
  shape.value_dim = v.size(3);
  shape.causal = options.causal;
  shape.eps = options.eps;
  shape.feature_map = options.feature_map;
  shape.key_log_scale = options.key_log_scale.defined();
  check_contiguous(op, "q", q);
  check_tensor(op, "k", k, q.shape(), q.dtype(), q.device());
  check_tensor(op, "v", v, {shape.batch, shape.heads, shape.length, shape.value_dim}, q.dtype(),
               q.device());
  require_backend_dtype(op, "q, k and v", q.dtype(), q.device());
  LONGSEQ_REQUIRE(options.eps >= 0.0f, "[{}] eps must not be negative, got {}", op, options.eps);
  LONGSEQ_REQUIRE(!shape.key_log_scale || options.eps == 0.0f,
                  "[{}] key log scales need eps = 0 (got {}), so that they cancel", op,
                  options.eps);
  LONGSEQ_REQUIRE(shape.key_dim >= 1 && shape.key_dim <= kLinearAttentionMaxKeyDim &&
                      shape.value_dim >= 1 && shape.value_dim <= 256,
                  "[{}] head dims must be Dk = 1-{} and Dv = 1-256, got Dk = {} and Dv = {}", op,
                  kLinearAttentionMaxKeyDim, shape.key_dim, shape.value_dim);
  return shape;
}

// Key log scales, if any: fp32 (B, H, N) on the device of the inputs.
void check_key_log_scale(const char* op, const Tensor& key_log_scale,
                         const LinearAttentionShape& shape, Device device) {
  if (key_log_scale.defined()) {
    check_tensor(op, "key_log_scale", key_log_scale, {shape.batch, shape.heads, shape.length},
                 DType::f32, device);
  }
}

// A state, if given, must be fp32 (B, H, Dk, Dv) and (B, H, Dk) on the device of the inputs.
void check_state(const char* op, const char* name, const LinearAttentionState& state,
                 const LinearAttentionShape& shape, Device device) {
  if (!state.defined()) {
    return;
  }
  check_tensor(op, name, state.s, {shape.batch, shape.heads, shape.key_dim, shape.value_dim},
               DType::f32, device);
  check_tensor(op, name, state.z, {shape.batch, shape.heads, shape.key_dim}, DType::f32, device);
  LONGSEQ_CHECK(state.log_scale.defined() == shape.key_log_scale,
                "[{}] {} must have a log scale exactly when the keys have log scales", op, name);
  if (state.log_scale.defined()) {
    check_tensor(op, name, state.log_scale, {shape.batch, shape.heads}, DType::f32, device);
  }
}

}  // namespace

void linear_attention_forward(ComputeContext& context, const Tensor& q, const Tensor& k,
                              const Tensor& v, const LinearAttentionOptions& options,
                              const LinearAttentionState& initial, const Tensor& out,
                              const LinearAttentionState& final) {
  constexpr const char* kOp = "linear_attention_forward";
  const LinearAttentionShape shape = checked_shape(kOp, q, k, v, options);
  check_key_log_scale(kOp, options.key_log_scale, shape, q.device());
  check_state(kOp, "initial", initial, shape, q.device());
  check_state(kOp, "final", final, shape, q.device());
  if (out.defined()) {
    check_like(kOp, "out", out, v);
  }
  const auto kernel =
      q.device() == Device::cpu ? cpu::linear_attention_forward : cuda::linear_attention_forward;
  kernel(context, shape, q, k, v, options.key_log_scale, initial, out, final);
}

void linear_attention_backward(ComputeContext& context, const Tensor& q, const Tensor& k,
                               const Tensor& v, const Tensor& grad_out,
                               const LinearAttentionOptions& options,
                               const LinearAttentionState& initial,
                               const LinearAttentionState& grad_final, const Tensor& grad_q,
                               const Tensor& grad_k, const Tensor& grad_v,
                               const LinearAttentionState& grad_initial) {
  constexpr const char* kOp = "linear_attention_backward";
  const LinearAttentionShape shape = checked_shape(kOp, q, k, v, options);
  check_like(kOp, "grad_out", grad_out, v);
  check_key_log_scale(kOp, options.key_log_scale, shape, q.device());
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
  const auto kernel =
      q.device() == Device::cpu ? cpu::linear_attention_backward : cuda::linear_attention_backward;
  kernel(context, shape, q, k, v, options.key_log_scale, grad_out, initial, grad_final, grad_q,
         grad_k, grad_v, grad_initial);
}

void linear_attention_step(ComputeContext& context, const Tensor& q, const Tensor& k,
                           const Tensor& v, const LinearAttentionOptions& options,
                           const LinearAttentionState& state, const Tensor& out) {
  constexpr const char* kOp = "linear_attention_step";
  LONGSEQ_CHECK(q.rank() == 3 && v.rank() == 3, "[{}] q, k must be (B, H, Dk), v (B, H, Dv)", kOp);
  LinearAttentionOptions step_options = options;
  step_options.causal = true;
  // The single token seen as a sequence of length 1.
  const LinearAttentionShape shape =
      checked_shape(kOp, q.reshape({q.size(0), q.size(1), 1, q.size(2)}),
                    k.reshape({k.size(0), k.size(1), 1, k.size(-1)}),
                    v.reshape({v.size(0), v.size(1), 1, v.size(2)}), step_options);
  const Tensor key_log_scale = options.key_log_scale.defined()
                                   ? options.key_log_scale.reshape({q.size(0), q.size(1), 1})
                                   : Tensor();
  check_key_log_scale(kOp, key_log_scale, shape, q.device());
  LONGSEQ_CHECK(state.defined(), "[{}] needs a state to update", kOp);
  check_state(kOp, "state", state, shape, q.device());
  check_like(kOp, "out", out, v);
  const auto kernel =
      q.device() == Device::cpu ? cpu::linear_attention_step : cuda::linear_attention_step;
  kernel(context, shape, q, k, v, key_log_scale, state, out);
}

double linear_attention_forward_flops(const LinearAttentionShape& shape) {
  const double heads = static_cast<double>(shape.batch * shape.heads);
  const double n = static_cast<double>(shape.length);
  const double dk = static_cast<double>(shape.key_dim);
  const double dv = static_cast<double>(shape.value_dim);
  const double chunk = static_cast<double>(kLinearAttentionChunk);
  if (!shape.causal) {
    return heads * 4.0 * n * dk * dv;
  }
  return heads * 2.0 * n * (chunk * (dk + dv) + 2.0 * dk * dv);
}

double linear_attention_backward_flops(const LinearAttentionShape& shape) {
  const double heads = static_cast<double>(shape.batch * shape.heads);
  const double n = static_cast<double>(shape.length);
  const double dk = static_cast<double>(shape.key_dim);
  const double dv = static_cast<double>(shape.value_dim);
  const double chunk = static_cast<double>(kLinearAttentionChunk);
  if (!shape.causal) {
    return heads * 12.0 * n * dk * dv;
  }
  return heads * 4.0 * n * (2.0 * chunk * (dk + dv) + 3.0 * dk * dv);
}

}  // namespace longseq
