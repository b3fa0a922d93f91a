#include "kernels/attention.h"

#include <cmath>

#include "kernels/backends.h"
#include "kernels/tensor_checks.h"

namespace longseq {

namespace {

void check_supported(const char* op, const AttentionShape& shape, DType dtype, Device device) {
  require_backend_dtype(op, "q, k and v", dtype, device);
  if (device == Device::cpu) {
    LONGSEQ_REQUIRE(shape.head_dim >= 1 && shape.head_dim <= 256,
                    "[{}] head dim {} is outside the supported range 1-256", op, shape.head_dim);
  } else {
    LONGSEQ_REQUIRE(
        shape.head_dim % 8 == 0 && shape.head_dim >= 8 && shape.head_dim <= 256,
        "[{}] the CUDA implementation takes head dims that are multiples of 8 up to 256, got {}",
        op, shape.head_dim);
  }
}

}  // namespace

AttentionShape attention_shape(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                               const AttentionOptions& options) {
  LONGSEQ_CHECK(q.rank() == 4 && k.rank() == 4 && v.rank() == 4,
                "[{}] q, k, v must be (B, H, N, D), got {}, {}, {}", op, q.describe(), k.describe(),
                v.describe());
  AttentionShape shape;
  shape.batch = q.size(0);
  shape.query_heads = q.size(1);
  shape.query_length = q.size(2);
  shape.head_dim = q.size(3);
  shape.kv_heads = k.size(1);
  shape.key_length = k.size(2);
  check_contiguous(op, "q", q);
  check_tensor(op, "k", k, {shape.batch, shape.kv_heads, shape.key_length, shape.head_dim},
               q.dtype(), q.device());
  check_tensor(op, "v", v, k.shape(), q.dtype(), q.device());
  LONGSEQ_REQUIRE(shape.kv_heads > 0 && shape.query_heads % shape.kv_heads == 0,
                  "[{}] query heads ({}) must be a multiple of key/value heads ({})", op,
                  shape.query_heads, shape.kv_heads);
  shape.scale =
      options.scale != 0.0f ? options.scale : 1.0f / std::sqrt(static_cast<float>(shape.head_dim));
  shape.causal = options.causal;
  shape.key_offset = options.key_offset;
  shape.query_offset =
      options.query_offset.value_or(options.key_offset + shape.key_length - shape.query_length);
  if (options.block_mask.defined()) {
    const std::int64_t rows =
        (shape.query_length + options.mask_block_q - 1) / options.mask_block_q;
    const std::int64_t columns =
        (shape.key_length + options.mask_block_k - 1) / options.mask_block_k;
    LONGSEQ_CHECK(options.mask_block_q > 0 && options.mask_block_k > 0,
                  "[{}] mask block sizes must be positive", op);
    check_tensor(op, "block_mask", options.block_mask, {rows, columns}, DType::u8, Device::cpu);
  }
  check_supported(op, shape, q.dtype(), q.device());
  return shape;
}

bool block_mask_allows(const AttentionOptions& options, std::int64_t query_block,
                       std::int64_t key_block) {
  if (!options.block_mask.defined()) {
    return true;
  }
  const std::int64_t columns = options.block_mask.size(1);
  return options.block_mask.data<std::uint8_t>()[query_block * columns + key_block] != 0;
}

double attention_forward_flops(const AttentionShape& shape) {
  const double dense = 4.0 * static_cast<double>(shape.query_length) *
                       static_cast<double>(shape.key_length) * static_cast<double>(shape.head_dim) *
                       static_cast<double>(shape.batch * shape.query_heads);
  return shape.causal ? dense / 2.0 : dense;
}

double attention_backward_flops(const AttentionShape& shape) {
  return 2.5 * attention_forward_flops(shape);
}

namespace {

using ForwardKernel = void (*)(ComputeContext&, const AttentionShape&, const AttentionOptions&,
                               const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                               const Tensor& lse);
using BackwardKernel = void (*)(ComputeContext&, const AttentionShape&, const AttentionOptions&,
                                const Tensor& q, const Tensor& k, const Tensor& v,
                                const Tensor& out, const Tensor& lse, const Tensor& grad_out,
                                const Tensor& grad_q, const Tensor& grad_k, const Tensor& grad_v);

// Validates q, k, v, the options and the forward results out and lse; returns the resolved shape.
AttentionShape checked_shape(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                             const AttentionOptions& options, const Tensor& out,
                             const Tensor& lse) {
  const AttentionShape shape = attention_shape(op, q, k, v, options);
  check_like(op, "out", out, q);
  check_tensor(op, "lse", lse, {shape.batch, shape.query_heads, shape.query_length}, DType::f32,
               q.device());
  return shape;
}

// Validates a forward call and runs the kernel of the tensors' device.
void attention_forward(const char* op, ForwardKernel cpu_kernel, ForwardKernel cuda_kernel,
                       ComputeContext& context, const Tensor& q, const Tensor& k, const Tensor& v,
                       const AttentionOptions& options, const Tensor& out, const Tensor& lse) {
  const AttentionShape shape = checked_shape(op, q, k, v, options, out, lse);
  const ForwardKernel kernel = q.device() == Device::cpu ? cpu_kernel : cuda_kernel;
  kernel(context, shape, options, q, k, v, out, lse);
}

// Validates a backward call and runs the kernel of the tensors' device.
void attention_backward(const char* op, BackwardKernel cpu_kernel, BackwardKernel cuda_kernel,
                        ComputeContext& context, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& out, const Tensor& lse, const Tensor& grad_out,
                        const AttentionOptions& options, const Tensor& grad_q, const Tensor& grad_k,
                        const Tensor& grad_v) {
  const AttentionShape shape = checked_shape(op, q, k, v, options, out, lse);
  check_like(op, "grad_out", grad_out, q);
  check_like(op, "grad_q", grad_q, q);
  check_like(op, "grad_k", grad_k, k);
  check_like(op, "grad_v", grad_v, k);
  const BackwardKernel kernel = q.device() == Device::cpu ? cpu_kernel : cuda_kernel;
  kernel(context, shape, options, q, k, v, out, lse, grad_out, grad_q, grad_k, grad_v);
}

}  // namespace

void flash_attention_forward(ComputeContext& context, const Tensor& q, const Tensor& k,
                             const Tensor& v, const AttentionOptions& options, const Tensor& out,
                             const Tensor& lse) {
  attention_forward("flash_attention_forward", cpu::flash_attention_forward,
                    cuda::flash_attention_forward, context, q, k, v, options, out, lse);
}

void flash_attention_backward(ComputeContext& context, const Tensor& q, const Tensor& k,
                              const Tensor& v, const Tensor& out, const Tensor& lse,
                              const Tensor& grad_out, const AttentionOptions& options,
                              const Tensor& grad_q, const Tensor& grad_k, const Tensor& grad_v) {
  attention_backward("flash_attention_backward", cpu::flash_attention_backward,
                     cuda::flash_attention_backward, context, q, k, v, out, lse, grad_out, options,
                     grad_q, grad_k, grad_v);
}

void softmax_attention_forward(ComputeContext& context, const Tensor& q, const Tensor& k,
                               const Tensor& v, const AttentionOptions& options, const Tensor& out,
                               const Tensor& lse) {
  attention_forward("softmax_attention_forward", cpu::softmax_attention_forward,
                    cuda::softmax_attention_forward, context, q, k, v, options, out, lse);
}

void softmax_attention_backward(ComputeContext& context, const Tensor& q, const Tensor& k,
                                const Tensor& v, const Tensor& out, const Tensor& lse,
                                const Tensor& grad_out, const AttentionOptions& options,
                                const Tensor& grad_q, const Tensor& grad_k, const Tensor& grad_v) {
  attention_backward("softmax_attention_backward", cpu::softmax_attention_backward,
                     cuda::softmax_attention_backward, context, q, k, v, out, lse, grad_out,
                     options, grad_q, grad_k, grad_v);
}

}  // namespace longseq
