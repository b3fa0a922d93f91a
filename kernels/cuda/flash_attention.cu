// cuda::flash_attention_forward / backward: picks the tensor-core kernels by element type and
// head-dim tile (bf16 / fp16), and sends fp32 inputs to the materialised path in bounded query
// chunks, which keeps fp32 exact (tensor cores would round the inputs to 16 or 19 bits).
#include <algorithm>
#include <cstdint>

#include "kernels/backends.h"
#include "kernels/cuda/attention_rows.cuh"
#include "kernels/cuda/element.cuh"
#include "kernels/cuda/flash_attention.cuh"
#include "kernels/cuda/materialised_attention.cuh"
#include "runtime/cuda/resources.h"

namespace longseq::cuda {

namespace {

// Score workspace bound of the fp32 path (scores, their gradients and probabilities, fp32).
constexpr long long kFp32WorkspaceBytes = 256LL << 20;

long long fp32_query_chunk(const AttentionShape& shape) {
  const long long bytes_per_query_row =
      4 * 4 * shape.batch * shape.query_heads * std::max<long long>(shape.key_length, 1);
  return std::max<long long>(1, kFp32WorkspaceBytes / bytes_per_query_row);
}

void check_aligned(const char* op, const char* name, const Tensor& tensor) {
  // The kernels move rows in 16-byte pieces.
  LONGSEQ_CHECK(reinterpret_cast<std::uintptr_t>(tensor.raw_data()) % 16 == 0,
                "[{}] {} must start 16-byte aligned for the CUDA kernels, got {}", op, name,
                tensor.describe());
}

FlashParams flash_params(const AttentionShape& shape, const AttentionMask& mask) {
  FlashParams params;
  params.batch = static_cast<int>(shape.batch);
  params.query_heads = static_cast<int>(shape.query_heads);
  params.kv_heads = static_cast<int>(shape.kv_heads);
  params.head_dim = static_cast<int>(shape.head_dim);
  params.scale = shape.scale;
  params.mask = mask;
  return params;
}

void check_grid(const char* op, const AttentionShape& shape) {
  LONGSEQ_CHECK(shape.query_heads <= 65535 && shape.batch <= 65535,
                "[{}] {} heads x {} batch entries exceed the CUDA grid", op, shape.query_heads,
                shape.batch);
}

// Calls function(T{}, std::integral_constant<int, tile>{}) for a 16-bit dtype and the smallest
// head-dim tile that holds head_dim (the dispatcher admits multiples of 8 up to 256).
template <typename Function>
void dispatch_flash(const char* op, DType dtype, long long head_dim, Function&& function) {
  const auto by_tile = [&](auto element) {
    if (head_dim <= 64) {
      function(element, std::integral_constant<int, 64>{});
    } else if (head_dim <= 128) {
      function(element, std::integral_constant<int, 128>{});
    } else {
      LONGSEQ_CHECK(head_dim <= 256, "[{}] head dim {} above 256", op, head_dim);
      function(element, std::integral_constant<int, 256>{});
    }
  };
  if (dtype == DType::bf16) {
    by_tile(__nv_bfloat16{});
  } else {
    LONGSEQ_CHECK(dtype == DType::f16, "[{}] the tensor-core kernels take bf16 or fp16, got {}", op,
                  dtype_name(dtype));
    by_tile(__half{});
  }
}

}  // namespace

void flash_attention_forward(ComputeContext& context, const AttentionShape& shape,
                             const AttentionOptions& options, const Tensor& q, const Tensor& k,
                             const Tensor& v, const Tensor& out, const Tensor& lse) {
  constexpr const char* op = "flash_attention_forward";
  if (q.dtype() == DType::f32) {
    materialised_attention_forward(context, shape, options, q, k, v, out, lse,
                                   fp32_query_chunk(shape));
    return;
  }
  check_grid(op, shape);
  for (const auto& [name, tensor] :
       {std::pair{"q", &q}, std::pair{"k", &k}, std::pair{"v", &v}, std::pair{"out", &out}}) {
    check_aligned(op, name, *tensor);
  }
  const cudaStream_t stream = context.cuda().stream();
  const DeviceAttentionMask mask(shape, options, kFlashTile, stream);
  FlashParams params = flash_params(shape, mask.get());
  params.q = q.raw_data();
  params.k = k.raw_data();
  params.v = v.raw_data();
  params.out = out.raw_data();
  params.lse = lse.data<float>();
  dispatch_flash(op, q.dtype(), shape.head_dim, [&](auto element, auto tile) {
    launch_flash_forward<decltype(element), decltype(tile)::value>(params, stream);
  });
  if (options.block_mask.defined()) {
    // The mask's device buffers are freed on return; make sure the stream is done with them.
    CUDA_CHECK(cudaStreamSynchronize(stream));
  }
}

void flash_attention_backward(ComputeContext& context, const AttentionShape& shape,
                              const AttentionOptions& options, const Tensor& q, const Tensor& k,
                              const Tensor& v, const Tensor& out, const Tensor& lse,
                              const Tensor& grad_out, const Tensor& grad_q, const Tensor& grad_k,
                              const Tensor& grad_v) {
  constexpr const char* op = "flash_attention_backward";
  if (q.dtype() == DType::f32) {
    materialised_attention_backward(context, shape, options, q, k, v, out, lse, grad_out, grad_q,
                                    grad_k, grad_v, fp32_query_chunk(shape));
    return;
  }
  check_grid(op, shape);
  for (const auto& [name, tensor] : {std::pair{"q", &q}, std::pair{"k", &k}, std::pair{"v", &v},
                                     std::pair{"grad_out", &grad_out}, std::pair{"grad_q", &grad_q},
                                     std::pair{"grad_k", &grad_k}, std::pair{"grad_v", &grad_v}}) {
    check_aligned(op, name, *tensor);
  }
  const cudaStream_t stream = context.cuda().stream();
  const DeviceAttentionMask mask(shape, options, kFlashTile, stream);
  const long long rows = shape.batch * shape.query_heads * shape.query_length;
  const Tensor delta =
      Tensor::empty({shape.batch, shape.query_heads, shape.query_length}, DType::f32, Device::cuda);
  launch_attention_delta(q.dtype(), out.raw_data(), grad_out.raw_data(), delta.data<float>(), rows,
                         static_cast<int>(shape.head_dim), stream);
  FlashParams params = flash_params(shape, mask.get());
  params.q = q.raw_data();
  params.k = k.raw_data();
  params.v = v.raw_data();
  params.lse = lse.data<float>();
  params.grad_out = grad_out.raw_data();
  params.delta = delta.data<float>();
  params.grad_q = grad_q.raw_data();
  params.grad_k = grad_k.raw_data();
  params.grad_v = grad_v.raw_data();
  dispatch_flash(op, q.dtype(), shape.head_dim, [&](auto element, auto tile) {
    using T = decltype(element);
    constexpr int kHeadTile = decltype(tile)::value;
    launch_flash_backward_kv<T, kHeadTile>(params, stream);
    launch_flash_backward_q<T, kHeadTile>(params, stream);
  });
  // delta and the mask's device buffers are freed on return; make sure the stream is done with
  // them.
  CUDA_CHECK(cudaStreamSynchronize(stream));
}

}  // namespace longseq::cuda
