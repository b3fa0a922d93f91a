#include <algorithm>

#include "kernels/common/softmax_math.h"
#include "kernels/cuda/attention_rows.cuh"
#include "kernels/cuda/element.cuh"
#include "runtime/cuda/check.h"

namespace longseq::cuda {

namespace {

constexpr int kRowThreads = 256;

// Grid-stride launches cover any element count with a bounded grid.
unsigned grid_for(long long count, int threads) {
  const long long blocks = (count + threads - 1) / threads;
  return static_cast<unsigned>(std::clamp<long long>(blocks, 1, 65535LL * 16));
}

// One warp per row.
template <typename T>
__global__ void attention_delta_kernel(const T* out, const T* grad_out, float* delta,
                                       long long rows, int head_dim) {
  const long long row = (static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x % 32);
  if (row >= rows) {
    return;  // whole warps leave together: rows are per warp
  }
  float sum = 0.0f;
  for (int i = lane; i < head_dim; i += 32) {
    sum +=
        element_to_float(out[row * head_dim + i]) * element_to_float(grad_out[row * head_dim + i]);
  }
  for (int offset = 16; offset > 0; offset /= 2) {
    sum += __shfl_xor_sync(0xffffffffu, sum, offset);
  }
  if (lane == 0) {
    delta[row] = sum;
  }
}

// Running (max, sum) of exp over a set of scores; combining two is the online-softmax merge.
struct RowStatistics {
  float max;
  float sum;
};

__device__ __forceinline__ RowStatistics combine(RowStatistics a, RowStatistics b) {
  const float max = fmaxf(a.max, b.max);
  return RowStatistics{max,
                       a.sum * rescale_factor(a.max, max) + b.sum * rescale_factor(b.max, max)};
}

// One block per score row.
template <typename T>
__global__ void masked_softmax_rows_kernel(const float* scores, T* probabilities, float* lse,
                                           ScoreChunk chunk, AttentionMask mask) {
  __shared__ RowStatistics warp_statistics[kRowThreads / 32];
  const long long row = blockIdx.x;  // in (B * Hq, chunk_rows)
  const long long head = row / chunk.chunk_rows;
  const long long query = chunk.first_query + row % chunk.chunk_rows;
  const float* s = scores + row * mask.key_length;
  T* p = probabilities + row * mask.key_length;

  RowStatistics statistics{negative_infinity(), 0.0f};
  for (long long key = threadIdx.x; key < mask.key_length; key += blockDim.x) {
    if (element_visible(mask, query, key)) {
      statistics = combine(statistics, RowStatistics{s[key], 1.0f});
    }
  }
  for (int offset = 16; offset > 0; offset /= 2) {
    const RowStatistics other{__shfl_xor_sync(0xffffffffu, statistics.max, offset),
                              __shfl_xor_sync(0xffffffffu, statistics.sum, offset)};
    statistics = combine(statistics, other);
  }
  if (threadIdx.x % 32 == 0) {
    warp_statistics[threadIdx.x / 32] = statistics;
  }
  __syncthreads();
  statistics = warp_statistics[0];
  for (int w = 1; w < kRowThreads / 32; ++w) {
    statistics = combine(statistics, warp_statistics[w]);
  }
  const float row_lse = finish_lse(statistics.max, statistics.sum);
  for (long long key = threadIdx.x; key < mask.key_length; key += blockDim.x) {
    const float value = element_visible(mask, query, key) ? exp_shifted(s[key], row_lse) : 0.0f;
    p[key] = element_from_float<T>(value);
  }
  if (threadIdx.x == 0) {
    lse[head * mask.query_length + query] = row_lse;
  }
}

template <typename T>
__global__ void score_gradients_kernel(const float* scores, const float* grad_probabilities,
                                       const float* lse, const float* delta, float scale,
                                       T* probabilities, T* grad_scores, ScoreChunk chunk,
                                       AttentionMask mask) {
  const long long count = chunk.heads * chunk.chunk_rows * mask.key_length;
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long row = i / mask.key_length;  // in (B * Hq, chunk_rows)
    const long long key = i % mask.key_length;
    const long long head = row / chunk.chunk_rows;
    const long long query = chunk.first_query + row % chunk.chunk_rows;
    const long long statistics_index = head * mask.query_length + query;
    const float p =
        element_visible(mask, query, key) ? exp_shifted(scores[i], lse[statistics_index]) : 0.0f;
    probabilities[i] = element_from_float<T>(p);
    grad_scores[i] =
        element_from_float<T>(scale * p * (grad_probabilities[i] - delta[statistics_index]));
  }
}

template <typename T>
__global__ void convert_from_float_kernel(const float* source, T* destination, long long count) {
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    destination[i] = element_from_float<T>(source[i]);
  }
}

}  // namespace

void launch_attention_delta(DType dtype, const void* out, const void* grad_out, float* delta,
                            long long rows, int head_dim, cudaStream_t stream) {
  if (rows == 0) {
    return;
  }
  dispatch_floating("attention_delta", dtype, [&](auto element) {
    using T = decltype(element);
    const long long blocks = (rows * 32 + kRowThreads - 1) / kRowThreads;
    attention_delta_kernel<T><<<static_cast<unsigned>(blocks), kRowThreads, 0, stream>>>(
        static_cast<const T*>(out), static_cast<const T*>(grad_out), delta, rows, head_dim);
    CUDA_CHECK_LAUNCH();
  });
}

void launch_masked_softmax_rows(DType dtype, const float* scores, void* probabilities, float* lse,
                                const ScoreChunk& chunk, const AttentionMask& mask,
                                cudaStream_t stream) {
  const long long rows = chunk.heads * chunk.chunk_rows;
  if (rows == 0) {
    return;
  }
  dispatch_floating("softmax_attention_forward", dtype, [&](auto element) {
    using T = decltype(element);
    masked_softmax_rows_kernel<T><<<static_cast<unsigned>(rows), kRowThreads, 0, stream>>>(
        scores, static_cast<T*>(probabilities), lse, chunk, mask);
    CUDA_CHECK_LAUNCH();
  });
}

void launch_score_gradients(DType dtype, const float* scores, const float* grad_probabilities,
                            const float* lse, const float* delta, float scale, void* probabilities,
                            void* grad_scores, const ScoreChunk& chunk, const AttentionMask& mask,
                            cudaStream_t stream) {
  const long long count = chunk.heads * chunk.chunk_rows * mask.key_length;
  if (count == 0) {
    return;
  }
  dispatch_floating("softmax_attention_backward", dtype, [&](auto element) {
    using T = decltype(element);
    score_gradients_kernel<T><<<grid_for(count, kRowThreads), kRowThreads, 0, stream>>>(
        scores, grad_probabilities, lse, delta, scale, static_cast<T*>(probabilities),
        static_cast<T*>(grad_scores), chunk, mask);
    CUDA_CHECK_LAUNCH();
  });
}

void launch_convert_from_float(DType dtype, const float* source, void* destination, long long count,
                               cudaStream_t stream) {
  if (count == 0) {
    return;
  }
  dispatch_floating("convert_from_float", dtype, [&](auto element) {
    using T = decltype(element);
    convert_from_float_kernel<T><<<grid_for(count, kRowThreads), kRowThreads, 0, stream>>>(
        source, static_cast<T*>(destination), count);
    CUDA_CHECK_LAUNCH();
  });
}

}  // namespace longseq::cuda
