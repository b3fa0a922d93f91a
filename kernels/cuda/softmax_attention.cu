// Materialised softmax attention on CUDA. Per chunk of query rows of every (batch, head):
//   forward:   S = scale Q K^T (fp32), P = masked row softmax (input dtype), O = P V
//   backward:  S again, dP = dO V^T, P and dS = scale P (dP - delta), then dQ = dS K,
//              dV += P^T dO and dK += dS^T Q summed in fp32 over chunks and grouped query heads.
// Grouped-query attention: the query heads of one key/value head form one strided batch whose
// K / V operand has batch stride 0.
#include <algorithm>
#include <type_traits>

#include "kernels/backends.h"
#include "kernels/cuda/attention_rows.cuh"
#include "kernels/cuda/cublas_gemm.cuh"
#include "kernels/cuda/element.cuh"
#include "kernels/cuda/materialised_attention.cuh"
#include "runtime/cuda/resources.h"

namespace longseq::cuda {

namespace {

// Element offsets of one (batch, head) in the (B, H, N, D) layouts.
struct HeadLayout {
  const AttentionShape& shape;
  [[nodiscard]] long long group_size() const { return shape.query_heads / shape.kv_heads; }
  [[nodiscard]] long long query_head(long long batch, long long head) const {
    return (batch * shape.query_heads + head) * shape.query_length * shape.head_dim;
  }
  [[nodiscard]] long long kv_head(long long batch, long long head) const {
    return (batch * shape.kv_heads + head) * shape.key_length * shape.head_dim;
  }
};

template <typename Pointer>
Pointer offset_bytes(Pointer base, long long elements, DType dtype) {
  using Byte =
      std::conditional_t<std::is_const_v<std::remove_pointer_t<Pointer>>, const char, char>;
  return static_cast<Pointer>(static_cast<Byte*>(base) +
                              elements * static_cast<long long>(dtype_size(dtype)));
}

// scores (group, chunk_rows, Nk) fp32 = alpha rows[first_query ..] (group heads) times keys^T
// (one key/value head), for each key/value head of each batch entry.
void chunk_scores(cublasHandle_t handle, const AttentionShape& shape, const Tensor& rows,
                  const Tensor& keys, float alpha, float* scores, long long first_query,
                  long long chunk_rows) {
  const HeadLayout layout{shape};
  const cudaDataType_t type = cublas_type(rows.dtype());
  const long long group = layout.group_size();
  for (long long b = 0; b < shape.batch; ++b) {
    for (long long kv = 0; kv < shape.kv_heads; ++kv) {
      const long long first_head = kv * group;
      const RowMajorMatrix a{
          offset_bytes(rows.raw_data(),
                       layout.query_head(b, first_head) + first_query * shape.head_dim,
                       rows.dtype()),
          type, shape.head_dim, shape.query_length * shape.head_dim};
      const RowMajorMatrix k{offset_bytes(keys.raw_data(), layout.kv_head(b, kv), keys.dtype()),
                             type, shape.head_dim, 0};
      const RowMajorOutput c{
          scores + (b * shape.query_heads + first_head) * chunk_rows * shape.key_length, CUDA_R_32F,
          shape.key_length, chunk_rows * shape.key_length};
      gemm_row_major(handle, chunk_rows, shape.key_length, shape.head_dim, alpha, a, false, k, true,
                     0.0f, c, group);
    }
  }
}

// result[first_query ..] (rows of each query head, input dtype) = weights (B * Hq, chunk_rows, Nk)
// times values (one key/value head per group).
void chunk_weighted_rows(cublasHandle_t handle, const AttentionShape& shape, const void* weights,
                         const Tensor& values, const Tensor& result, long long first_query,
                         long long chunk_rows) {
  const HeadLayout layout{shape};
  const cudaDataType_t type = cublas_type(values.dtype());
  const long long group = layout.group_size();
  for (long long b = 0; b < shape.batch; ++b) {
    for (long long kv = 0; kv < shape.kv_heads; ++kv) {
      const long long first_head = kv * group;
      const RowMajorMatrix w{
          offset_bytes(weights,
                       (b * shape.query_heads + first_head) * chunk_rows * shape.key_length,
                       values.dtype()),
          type, shape.key_length, chunk_rows * shape.key_length};
      const RowMajorMatrix x{offset_bytes(values.raw_data(), layout.kv_head(b, kv), values.dtype()),
                             type, shape.head_dim, 0};
      const RowMajorOutput c{
          offset_bytes(result.raw_data(),
                       layout.query_head(b, first_head) + first_query * shape.head_dim,
                       result.dtype()),
          type, shape.head_dim, shape.query_length * shape.head_dim};
      gemm_row_major(handle, chunk_rows, shape.head_dim, shape.key_length, 1.0f, w, false, x, false,
                     0.0f, c, group);
    }
  }
}

// accumulator (B, Hkv, Nk, D) fp32 += weights^T (chunk of each query head) times rows[first_query
// ..], summed over the query heads of each key/value head.
void chunk_accumulate_keys(cublasHandle_t handle, const AttentionShape& shape, const void* weights,
                           const Tensor& rows, float* accumulator, long long first_query,
                           long long chunk_rows) {
  const HeadLayout layout{shape};
  const cudaDataType_t type = cublas_type(rows.dtype());
  for (long long b = 0; b < shape.batch; ++b) {
    for (long long head = 0; head < shape.query_heads; ++head) {
      const RowMajorMatrix w{
          offset_bytes(weights, (b * shape.query_heads + head) * chunk_rows * shape.key_length,
                       rows.dtype()),
          type, shape.key_length, 0};
      const RowMajorMatrix x{
          offset_bytes(rows.raw_data(), layout.query_head(b, head) + first_query * shape.head_dim,
                       rows.dtype()),
          type, shape.head_dim, 0};
      const RowMajorOutput c{accumulator + layout.kv_head(b, head / layout.group_size()),
                             CUDA_R_32F, shape.head_dim, 0};
      gemm_row_major(handle, shape.key_length, shape.head_dim, chunk_rows, 1.0f, w, true, x, false,
                     1.0f, c, 1);
    }
  }
}

long long resolved_chunk(const AttentionShape& shape, long long query_chunk) {
  return std::clamp<long long>(query_chunk, 1, std::max<long long>(shape.query_length, 1));
}

}  // namespace

void materialised_attention_forward(ComputeContext& context, const AttentionShape& shape,
                                    const AttentionOptions& options, const Tensor& q,
                                    const Tensor& k, const Tensor& v, const Tensor& out,
                                    const Tensor& lse, long long query_chunk) {
  CudaResources& cuda = context.cuda();
  const cudaStream_t stream = cuda.stream();
  const long long heads = shape.batch * shape.query_heads;
  if (heads == 0 || shape.query_length == 0) {
    return;
  }
  const long long chunk = resolved_chunk(shape, query_chunk);
  const DeviceAttentionMask mask(shape, options, 0, stream);
  const Tensor scores = Tensor::empty({heads, chunk, shape.key_length}, DType::f32, Device::cuda);
  const Tensor probabilities =
      Tensor::empty({heads, chunk, shape.key_length}, q.dtype(), Device::cuda);
  for (long long first = 0; first < shape.query_length; first += chunk) {
    const long long rows = std::min(chunk, shape.query_length - first);
    const ScoreChunk geometry{heads, first, rows};
    chunk_scores(cuda.cublas(), shape, q, k, shape.scale, scores.data<float>(), first, rows);
    launch_masked_softmax_rows(q.dtype(), scores.data<float>(), probabilities.raw_data(),
                               lse.data<float>(), geometry, mask.get(), stream);
    chunk_weighted_rows(cuda.cublas(), shape, probabilities.raw_data(), v, out, first, rows);
  }
  // The workspaces are freed on return; make sure the stream is done with them.
  CUDA_CHECK(cudaStreamSynchronize(stream));
}

void materialised_attention_backward(ComputeContext& context, const AttentionShape& shape,
                                     const AttentionOptions& options, const Tensor& q,
                                     const Tensor& k, const Tensor& v, const Tensor& out,
                                     const Tensor& lse, const Tensor& grad_out,
                                     const Tensor& grad_q, const Tensor& grad_k,
                                     const Tensor& grad_v, long long query_chunk) {
  CudaResources& cuda = context.cuda();
  const cudaStream_t stream = cuda.stream();
  const long long heads = shape.batch * shape.query_heads;
  // fp32 gradients accumulate in place; 16-bit ones in fp32 workspaces converted at the end.
  const bool accumulate_in_place = q.dtype() == DType::f32;
  const Tensor grad_k_sum =
      accumulate_in_place ? grad_k : Tensor::empty(k.shape(), DType::f32, Device::cuda);
  const Tensor grad_v_sum =
      accumulate_in_place ? grad_v : Tensor::empty(v.shape(), DType::f32, Device::cuda);
  CUDA_CHECK(cudaMemsetAsync(grad_k_sum.raw_data(), 0, grad_k_sum.bytes(), stream));
  CUDA_CHECK(cudaMemsetAsync(grad_v_sum.raw_data(), 0, grad_v_sum.bytes(), stream));
  if (heads > 0 && shape.query_length > 0) {
    const long long chunk = resolved_chunk(shape, query_chunk);
    const DeviceAttentionMask mask(shape, options, 0, stream);
    const Tensor delta = Tensor::empty({heads, shape.query_length}, DType::f32, Device::cuda);
    launch_attention_delta(q.dtype(), out.raw_data(), grad_out.raw_data(), delta.data<float>(),
                           heads * shape.query_length, static_cast<int>(shape.head_dim), stream);
    const Tensor scores = Tensor::empty({heads, chunk, shape.key_length}, DType::f32, Device::cuda);
    const Tensor grad_probabilities =
        Tensor::empty({heads, chunk, shape.key_length}, DType::f32, Device::cuda);
    const Tensor probabilities =
        Tensor::empty({heads, chunk, shape.key_length}, q.dtype(), Device::cuda);
    const Tensor grad_scores =
        Tensor::empty({heads, chunk, shape.key_length}, q.dtype(), Device::cuda);
    for (long long first = 0; first < shape.query_length; first += chunk) {
      const long long rows = std::min(chunk, shape.query_length - first);
      const ScoreChunk geometry{heads, first, rows};
      chunk_scores(cuda.cublas(), shape, q, k, shape.scale, scores.data<float>(), first, rows);
      chunk_scores(cuda.cublas(), shape, grad_out, v, 1.0f, grad_probabilities.data<float>(), first,
                   rows);
      launch_score_gradients(q.dtype(), scores.data<float>(), grad_probabilities.data<float>(),
                             lse.data<float>(), delta.data<float>(), shape.scale,
                             probabilities.raw_data(), grad_scores.raw_data(), geometry, mask.get(),
                             stream);
      chunk_weighted_rows(cuda.cublas(), shape, grad_scores.raw_data(), k, grad_q, first, rows);
      chunk_accumulate_keys(cuda.cublas(), shape, probabilities.raw_data(), grad_out,
                            grad_v_sum.data<float>(), first, rows);
      chunk_accumulate_keys(cuda.cublas(), shape, grad_scores.raw_data(), q,
                            grad_k_sum.data<float>(), first, rows);
    }
  }
  if (!accumulate_in_place) {
    launch_convert_from_float(k.dtype(), grad_k_sum.data<float>(), grad_k.raw_data(),
                              grad_k.numel(), stream);
    launch_convert_from_float(v.dtype(), grad_v_sum.data<float>(), grad_v.raw_data(),
                              grad_v.numel(), stream);
  }
  // The workspaces are freed on return; make sure the stream is done with them.
  CUDA_CHECK(cudaStreamSynchronize(stream));
}

void softmax_attention_forward(ComputeContext& context, const AttentionShape& shape,
                               const AttentionOptions& options, const Tensor& q, const Tensor& k,
                               const Tensor& v, const Tensor& out, const Tensor& lse) {
  // The baseline materialises the whole (B, Hq, Nq, Nk) score matrix.
  materialised_attention_forward(context, shape, options, q, k, v, out, lse, shape.query_length);
}

void softmax_attention_backward(ComputeContext& context, const AttentionShape& shape,
                                const AttentionOptions& options, const Tensor& q, const Tensor& k,
                                const Tensor& v, const Tensor& out, const Tensor& lse,
                                const Tensor& grad_out, const Tensor& grad_q, const Tensor& grad_k,
                                const Tensor& grad_v) {
  materialised_attention_backward(context, shape, options, q, k, v, out, lse, grad_out, grad_q,
                                  grad_k, grad_v, shape.query_length);
}

}  // namespace longseq::cuda
