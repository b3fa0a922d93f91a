// Definitions of the flash attention kernels (FlashAttention-2 work partitioning, mma.sync tensor
// cores, fp32 accumulation). Included only by the flash_*_d<tile>.cu instantiation files.
//
// Every kernel works on 64 x 64 tiles of scores with 4 warps; warp w owns rows 16w .. 16w + 15 of
// the tile, so a row's running max and sum stay within the 4 lanes (one quad) that hold it.
// Head dims are zero-padded to kHeadTile in shared memory (zeros add nothing to any product);
// shared rows are padded by 8 elements so ldmatrix's 8 row addresses hit distinct banks.
#pragma once

#include <cstdint>

#include "kernels/common/softmax_math.h"
#include "kernels/cuda/flash_attention.cuh"
#include "kernels/cuda/mma.cuh"
#include "runtime/cuda/check.h"

namespace longseq::cuda {

template <int kHeadTile>
inline constexpr int kSharedLd = kHeadTile + 8;  // elements per shared tile row

template <typename T, int kHeadTile>
inline constexpr int kSharedTileBytes =
    kFlashTile* kSharedLd<kHeadTile>* static_cast<int>(sizeof(T));

template <int kHeadTile>
using HeadAccumulator = float[kHeadTile / 8][4];    // 16 rows x kHeadTile, C fragments
using ScoreAccumulator = float[kFlashTile / 8][4];  // 16 rows x 64, C fragments

struct LaneLayout {
  int warp;
  int group;  // fragment row (and row + 8)
  int quad;   // fragment column pair
};

__device__ __forceinline__ LaneLayout lane_layout() {
  const int thread = static_cast<int>(threadIdx.x);
  return LaneLayout{thread / 32, (thread % 32) / 4, thread % 4};
}

// Copies rows [0, rows_left) of a (rows, head_dim) global block into a (kFlashTile, kHeadTile)
// shared tile in 16-byte pieces, zero-filling missing rows and the head-dim padding.
template <typename T, int kHeadTile>
__device__ void load_tile(T* tile, const T* source, long long rows_left, int head_dim) {
  constexpr int kPieces = kHeadTile / 8;
  for (int index = static_cast<int>(threadIdx.x); index < kFlashTile * kPieces;
       index += kFlashThreads) {
    const int row = index / kPieces;
    const int column = (index % kPieces) * 8;
    uint4 value = make_uint4(0u, 0u, 0u, 0u);
    if (row < rows_left && column < head_dim) {
      value =
          *reinterpret_cast<const uint4*>(source + static_cast<long long>(row) * head_dim + column);
    }
    *reinterpret_cast<uint4*>(tile + row * kSharedLd<kHeadTile> + column) = value;
  }
}

// acc (16 x 64) += a[row0 .. row0 + 16) b^T: both shared tiles are (kFlashTile, kHeadTile)
// row-major, e.g. scores Q K^T, or dO V^T.
template <typename T, int kHeadTile>
__device__ __forceinline__ void warp_rows_times_rows(ScoreAccumulator& acc, const T* a_tile,
                                                     int row0, const T* b_tile, int head_dim) {
#pragma unroll
  for (int k0 = 0; k0 < kHeadTile; k0 += 16) {
    if (k0 >= head_dim) {
      break;  // the rest is zero padding
    }
    std::uint32_t a[4];
    load_a_fragment(a, a_tile, kSharedLd<kHeadTile>, row0, k0);
#pragma unroll
    for (int n0 = 0; n0 < kFlashTile; n0 += 16) {
      std::uint32_t b[2][2];
      load_b_fragments_n_major(b, b_tile, kSharedLd<kHeadTile>, n0, k0);
      mma_16x8x16<T>(acc[n0 / 8], a, b[0]);
      mma_16x8x16<T>(acc[n0 / 8 + 1], a, b[1]);
    }
  }
}

// acc (16 x kHeadTile) += weights (16 x 64, C fragments, rounded to T) times b_tile (64 x
// kHeadTile), e.g. P V, or dS K.
template <typename T, int kHeadTile>
__device__ __forceinline__ void warp_weights_times_rows(HeadAccumulator<kHeadTile>& acc,
                                                        const ScoreAccumulator& weights,
                                                        const T* b_tile, int head_dim) {
#pragma unroll
  for (int slice = 0; slice < kFlashTile / 16; ++slice) {
    std::uint32_t a[4];
    accumulator_to_a_fragment<T>(a, weights, slice);
#pragma unroll
    for (int n0 = 0; n0 < kHeadTile; n0 += 16) {
      if (n0 >= head_dim) {
        break;
      }
      std::uint32_t b[2][2];
      load_b_fragments_k_major(b, b_tile, kSharedLd<kHeadTile>, slice * 16, n0);
      mma_16x8x16<T>(acc[n0 / 8], a, b[0]);
      mma_16x8x16<T>(acc[n0 / 8 + 1], a, b[1]);
    }
  }
}

// Row and column (within the tile's 16 x 64 warp block) of element e of n-tile `tile` of a lane.
__device__ __forceinline__ int fragment_row(const LaneLayout& lane, int e) {
  return lane.group + (e / 2) * 8;
}
__device__ __forceinline__ int fragment_column(const LaneLayout& lane, int tile, int e) {
  return tile * 8 + 2 * lane.quad + e % 2;
}

// Multiplies scores by the scale and sets pairs the mask hides to -inf. Rows of the warp block
// start at call row `row0`, columns at `column0`; with kRowsAreKeys the block is S^T.
template <bool kRowsAreKeys>
__device__ __forceinline__ void scale_and_mask(ScoreAccumulator& s, float scale, bool partial,
                                               const AttentionMask& mask, long long row0,
                                               long long column0) {
  const LaneLayout lane = lane_layout();
#pragma unroll
  for (int tile = 0; tile < kFlashTile / 8; ++tile) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      s[tile][e] *= scale;
      if (partial) {
        const long long row = row0 + fragment_row(lane, e);
        const long long column = column0 + fragment_column(lane, tile, e);
        const bool visible =
            kRowsAreKeys ? element_visible(mask, column, row) : element_visible(mask, row, column);
        if (!visible) {
          s[tile][e] = negative_infinity();
        }
      }
    }
  }
}

// Sum (or max) of a row's values over the quad of lanes that holds the row.
__device__ __forceinline__ float quad_sum(float value) {
  value += __shfl_xor_sync(0xffffffffu, value, 1);
  return value + __shfl_xor_sync(0xffffffffu, value, 2);
}
__device__ __forceinline__ float quad_max(float value) {
  value = fmaxf(value, __shfl_xor_sync(0xffffffffu, value, 1));
  return fmaxf(value, __shfl_xor_sync(0xffffffffu, value, 2));
}

// One online-softmax step (MECHANISMS.md section 2) for the lane's two rows (group, group + 8):
// scores s become P = exp(s - m'), and the output and the lane's partial sums are rescaled.
template <int kHeadTile>
__device__ __forceinline__ void online_softmax_step(ScoreAccumulator& s,
                                                    HeadAccumulator<kHeadTile>& out,
                                                    float (&row_max)[2], float (&row_sum)[2]) {
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    float tile_max = negative_infinity();
#pragma unroll
    for (int tile = 0; tile < kFlashTile / 8; ++tile) {
      tile_max = fmaxf(tile_max, fmaxf(s[tile][2 * half], s[tile][2 * half + 1]));
    }
    const float new_max = fmaxf(row_max[half], quad_max(tile_max));
    const float factor = rescale_factor(row_max[half], new_max);
    row_max[half] = new_max;
    row_sum[half] *= factor;
#pragma unroll
    for (int tile = 0; tile < kHeadTile / 8; ++tile) {
      out[tile][2 * half] *= factor;
      out[tile][2 * half + 1] *= factor;
    }
#pragma unroll
    for (int tile = 0; tile < kFlashTile / 8; ++tile) {
#pragma unroll
      for (int e = 2 * half; e < 2 * half + 2; ++e) {
        s[tile][e] = exp_shifted(s[tile][e], new_max);
        row_sum[half] += s[tile][e];
      }
    }
  }
}

// Writes rows [row0, row0 + 16) of a warp's (16 x kHeadTile) accumulator, times `factor[half]`,
// into a (rows, head_dim) global block; rows >= rows_left and padded columns are dropped.
template <typename T, int kHeadTile>
__device__ __forceinline__ void store_rows(T* destination, const HeadAccumulator<kHeadTile>& acc,
                                           const float (&factor)[2], long long row0,
                                           long long rows_left, int head_dim) {
  const LaneLayout lane = lane_layout();
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const long long row = row0 + lane.group + 8 * half;
    if (row >= rows_left) {
      continue;
    }
#pragma unroll
    for (int tile = 0; tile < kHeadTile / 8; ++tile) {
      const int column = fragment_column(lane, tile, 0);
      if (column < head_dim) {
        *reinterpret_cast<std::uint32_t*>(destination + row * head_dim + column) = pack_pair<T>(
            acc[tile][2 * half] * factor[half], acc[tile][2 * half + 1] * factor[half]);
      }
    }
  }
}

// Grid (query tiles, Hq, B). Longest causal rows first: the block index counts tiles from the end.
template <typename T, int kHeadTile>
__global__ void __launch_bounds__(kFlashThreads) flash_forward_kernel(FlashParams params) {
  extern __shared__ __align__(16) unsigned char shared[];
  T* q_tile = reinterpret_cast<T*>(shared);
  T* k_tile = q_tile + kFlashTile * kSharedLd<kHeadTile>;
  T* v_tile = k_tile + kFlashTile * kSharedLd<kHeadTile>;

  const AttentionMask& mask = params.mask;
  const long long query_tile = gridDim.x - 1 - blockIdx.x;
  const int head = static_cast<int>(blockIdx.y);
  const int batch = static_cast<int>(blockIdx.z);
  const int kv_head = head / (params.query_heads / params.kv_heads);
  const int d = params.head_dim;
  const long long first_query = query_tile * kFlashTile;
  const long long query_row =
      static_cast<long long>(batch * params.query_heads + head) * mask.query_length;
  const long long key_row =
      static_cast<long long>(batch * params.kv_heads + kv_head) * mask.key_length;
  const T* q =
      static_cast<const T*>(params.q) + (query_row + first_query) * d;  // (Nq - first_query, D)
  const T* k = static_cast<const T*>(params.k) + key_row * d;           // (Nk, D)
  const T* v = static_cast<const T*>(params.v) + key_row * d;           // (Nk, D)
  load_tile<T, kHeadTile>(q_tile, q, mask.query_length - first_query, d);

  const LaneLayout lane = lane_layout();
  const int warp_row = 16 * lane.warp;
  HeadAccumulator<kHeadTile> out = {};
  float row_max[2] = {negative_infinity(), negative_infinity()};
  float row_sum[2] = {0.0f, 0.0f};  // this lane's columns only; summed over the quad at the end
  const long long key_tiles = (mask.key_length + kFlashTile - 1) / kFlashTile;
  for (long long key_tile = 0; key_tile < key_tiles; ++key_tile) {
    const TileVisibility visibility = classify_tile(mask, query_tile, key_tile, kFlashTile);
    if (!visibility.any) {
      continue;
    }
    const long long first_key = key_tile * kFlashTile;
    __syncthreads();  // every warp is done with the previous key and value tiles
    load_tile<T, kHeadTile>(k_tile, k + first_key * d, mask.key_length - first_key, d);
    load_tile<T, kHeadTile>(v_tile, v + first_key * d, mask.key_length - first_key, d);
    __syncthreads();
    ScoreAccumulator s = {};
    warp_rows_times_rows<T, kHeadTile>(s, q_tile, warp_row, k_tile, d);  // S = Q K^T
    scale_and_mask<false>(s, params.scale, visibility.partial, mask, first_query + warp_row,
                          first_key);
    online_softmax_step<kHeadTile>(s, out, row_max, row_sum);
    warp_weights_times_rows<T, kHeadTile>(out, s, v_tile, d);  // O += P V
  }

  float inverse[2];
  float* lse = params.lse + query_row;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const float total = quad_sum(row_sum[half]);
    inverse[half] = inverse_sum(total);
    const long long row = first_query + warp_row + lane.group + 8 * half;
    if (lane.quad == 0 && row < mask.query_length) {
      lse[row] = finish_lse(row_max[half], total);
    }
  }
  store_rows<T, kHeadTile>(static_cast<T*>(params.out) + (query_row + first_query) * d, out,
                           inverse, warp_row, mask.query_length - first_query, d);
}

// Grid (key tiles, Hkv, B). The block keeps its K and V tiles and walks every query tile of every
// query head that reads them, so dK and dV are summed in registers in a fixed order
// (deterministic). Warps own key rows: they compute S^T = K Q^T and dP^T = V dO^T, whose C
// fragments are directly the A operands of dV += P^T dO and dK += dS^T Q.
template <typename T, int kHeadTile>
__global__ void __launch_bounds__(kFlashThreads) flash_backward_kv_kernel(FlashParams params) {
  extern __shared__ __align__(16) unsigned char shared[];
  T* k_tile = reinterpret_cast<T*>(shared);
  T* v_tile = k_tile + kFlashTile * kSharedLd<kHeadTile>;
  T* q_tile = v_tile + kFlashTile * kSharedLd<kHeadTile>;
  T* grad_out_tile = q_tile + kFlashTile * kSharedLd<kHeadTile>;
  __shared__ float lse_tile[kFlashTile];
  __shared__ float delta_tile[kFlashTile];

  const AttentionMask& mask = params.mask;
  const long long key_tile = blockIdx.x;
  const int kv_head = static_cast<int>(blockIdx.y);
  const int batch = static_cast<int>(blockIdx.z);
  const int group_size = params.query_heads / params.kv_heads;
  const int d = params.head_dim;
  const long long first_key = key_tile * kFlashTile;
  const long long key_row =
      static_cast<long long>(batch * params.kv_heads + kv_head) * mask.key_length;
  load_tile<T, kHeadTile>(k_tile, static_cast<const T*>(params.k) + (key_row + first_key) * d,
                          mask.key_length - first_key, d);
  load_tile<T, kHeadTile>(v_tile, static_cast<const T*>(params.v) + (key_row + first_key) * d,
                          mask.key_length - first_key, d);

  const LaneLayout lane = lane_layout();
  const int warp_row = 16 * lane.warp;
  HeadAccumulator<kHeadTile> grad_k = {};
  HeadAccumulator<kHeadTile> grad_v = {};
  const long long query_tiles = (mask.query_length + kFlashTile - 1) / kFlashTile;
  for (int head = kv_head * group_size; head < (kv_head + 1) * group_size; ++head) {
    const long long query_row =
        static_cast<long long>(batch * params.query_heads + head) * mask.query_length;
    for (long long query_tile = 0; query_tile < query_tiles; ++query_tile) {
      const TileVisibility visibility = classify_tile(mask, query_tile, key_tile, kFlashTile);
      if (!visibility.any) {
        continue;
      }
      const long long first_query = query_tile * kFlashTile;
      const long long rows_left = mask.query_length - first_query;
      __syncthreads();  // every warp is done with the previous query tiles
      load_tile<T, kHeadTile>(
          q_tile, static_cast<const T*>(params.q) + (query_row + first_query) * d, rows_left, d);
      load_tile<T, kHeadTile>(
          grad_out_tile, static_cast<const T*>(params.grad_out) + (query_row + first_query) * d,
          rows_left, d);
      for (int i = static_cast<int>(threadIdx.x); i < kFlashTile; i += kFlashThreads) {
        // Missing query rows get LSE -inf, hence P = 0 and no contribution.
        lse_tile[i] = i < rows_left ? params.lse[query_row + first_query + i] : negative_infinity();
        delta_tile[i] = i < rows_left ? params.delta[query_row + first_query + i] : 0.0f;
      }
      __syncthreads();

      ScoreAccumulator p = {};
      warp_rows_times_rows<T, kHeadTile>(p, k_tile, warp_row, q_tile, d);  // S^T = K Q^T
      scale_and_mask<true>(p, params.scale, visibility.partial, mask, first_key + warp_row,
                           first_query);
#pragma unroll
      for (int tile = 0; tile < kFlashTile / 8; ++tile) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          p[tile][e] = exp_shifted(p[tile][e], lse_tile[fragment_column(lane, tile, e)]);  // P^T
        }
      }
      warp_weights_times_rows<T, kHeadTile>(grad_v, p, grad_out_tile, d);  // dV += P^T dO
      ScoreAccumulator ds = {};
      warp_rows_times_rows<T, kHeadTile>(ds, v_tile, warp_row, grad_out_tile, d);  // dP^T = V dO^T
#pragma unroll
      for (int tile = 0; tile < kFlashTile / 8; ++tile) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          ds[tile][e] =
              p[tile][e] * (ds[tile][e] - delta_tile[fragment_column(lane, tile, e)]);  // dS^T
        }
      }
      warp_weights_times_rows<T, kHeadTile>(grad_k, ds, q_tile,
                                            d);  // dK += dS^T Q (scaled at the end)
    }
  }
  const float scale_k[2] = {params.scale, params.scale};
  const float scale_v[2] = {1.0f, 1.0f};
  store_rows<T, kHeadTile>(static_cast<T*>(params.grad_k) + (key_row + first_key) * d, grad_k,
                           scale_k, warp_row, mask.key_length - first_key, d);
  store_rows<T, kHeadTile>(static_cast<T*>(params.grad_v) + (key_row + first_key) * d, grad_v,
                           scale_v, warp_row, mask.key_length - first_key, d);
}

// Grid (query tiles, Hq, B): dQ in its own pass over the key tiles, without atomics.
template <typename T, int kHeadTile>
__global__ void __launch_bounds__(kFlashThreads) flash_backward_q_kernel(FlashParams params) {
  extern __shared__ __align__(16) unsigned char shared[];
  T* q_tile = reinterpret_cast<T*>(shared);
  T* grad_out_tile = q_tile + kFlashTile * kSharedLd<kHeadTile>;
  T* k_tile = grad_out_tile + kFlashTile * kSharedLd<kHeadTile>;
  T* v_tile = k_tile + kFlashTile * kSharedLd<kHeadTile>;

  const AttentionMask& mask = params.mask;
  const long long query_tile = gridDim.x - 1 - blockIdx.x;
  const int head = static_cast<int>(blockIdx.y);
  const int batch = static_cast<int>(blockIdx.z);
  const int kv_head = head / (params.query_heads / params.kv_heads);
  const int d = params.head_dim;
  const long long first_query = query_tile * kFlashTile;
  const long long rows_left = mask.query_length - first_query;
  const long long query_row =
      static_cast<long long>(batch * params.query_heads + head) * mask.query_length;
  const long long key_row =
      static_cast<long long>(batch * params.kv_heads + kv_head) * mask.key_length;
  load_tile<T, kHeadTile>(q_tile, static_cast<const T*>(params.q) + (query_row + first_query) * d,
                          rows_left, d);
  load_tile<T, kHeadTile>(grad_out_tile,
                          static_cast<const T*>(params.grad_out) + (query_row + first_query) * d,
                          rows_left, d);
  const T* k = static_cast<const T*>(params.k) + key_row * d;  // (Nk, D)
  const T* v = static_cast<const T*>(params.v) + key_row * d;  // (Nk, D)

  const LaneLayout lane = lane_layout();
  const int warp_row = 16 * lane.warp;
  float row_lse[2];
  float row_delta[2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const long long row = warp_row + lane.group + 8 * half;
    row_lse[half] =
        row < rows_left ? params.lse[query_row + first_query + row] : negative_infinity();
    row_delta[half] = row < rows_left ? params.delta[query_row + first_query + row] : 0.0f;
  }
  HeadAccumulator<kHeadTile> grad_q = {};
  const long long key_tiles = (mask.key_length + kFlashTile - 1) / kFlashTile;
  for (long long key_tile = 0; key_tile < key_tiles; ++key_tile) {
    const TileVisibility visibility = classify_tile(mask, query_tile, key_tile, kFlashTile);
    if (!visibility.any) {
      continue;
    }
    const long long first_key = key_tile * kFlashTile;
    __syncthreads();
    load_tile<T, kHeadTile>(k_tile, k + first_key * d, mask.key_length - first_key, d);
    load_tile<T, kHeadTile>(v_tile, v + first_key * d, mask.key_length - first_key, d);
    __syncthreads();
    ScoreAccumulator p = {};
    warp_rows_times_rows<T, kHeadTile>(p, q_tile, warp_row, k_tile, d);  // S = Q K^T
    scale_and_mask<false>(p, params.scale, visibility.partial, mask, first_query + warp_row,
                          first_key);
    ScoreAccumulator ds = {};
    warp_rows_times_rows<T, kHeadTile>(ds, grad_out_tile, warp_row, v_tile, d);  // dP = dO V^T
#pragma unroll
    for (int tile = 0; tile < kFlashTile / 8; ++tile) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int half = e / 2;
        ds[tile][e] =
            exp_shifted(p[tile][e], row_lse[half]) * (ds[tile][e] - row_delta[half]);  // dS
      }
    }
    warp_weights_times_rows<T, kHeadTile>(grad_q, ds, k_tile, d);  // dQ += dS K (scaled at the end)
  }
  const float scale_q[2] = {params.scale, params.scale};
  store_rows<T, kHeadTile>(static_cast<T*>(params.grad_q) + (query_row + first_query) * d, grad_q,
                           scale_q, warp_row, rows_left, d);
}

template <typename Kernel>
void launch_flash_kernel(Kernel kernel, dim3 grid, int shared_bytes, const FlashParams& params,
                         cudaStream_t stream) {
  if (grid.x == 0 || grid.y == 0 || grid.z == 0) {
    return;
  }
  // Above 48 KiB a kernel must opt in to dynamic shared memory.
  CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, shared_bytes));
  kernel<<<grid, kFlashThreads, shared_bytes, stream>>>(params);
  CUDA_CHECK_LAUNCH();
}

inline unsigned tile_count(long long length) {
  return static_cast<unsigned>((length + kFlashTile - 1) / kFlashTile);
}

template <typename T, int kHeadTile>
void launch_flash_forward(const FlashParams& params, cudaStream_t stream) {
  const dim3 grid(tile_count(params.mask.query_length), params.query_heads, params.batch);
  launch_flash_kernel(flash_forward_kernel<T, kHeadTile>, grid, 3 * kSharedTileBytes<T, kHeadTile>,
                      params, stream);
}

template <typename T, int kHeadTile>
void launch_flash_backward_kv(const FlashParams& params, cudaStream_t stream) {
  const dim3 grid(tile_count(params.mask.key_length), params.kv_heads, params.batch);
  launch_flash_kernel(flash_backward_kv_kernel<T, kHeadTile>, grid,
                      4 * kSharedTileBytes<T, kHeadTile>, params, stream);
}

template <typename T, int kHeadTile>
void launch_flash_backward_q(const FlashParams& params, cudaStream_t stream) {
  const dim3 grid(tile_count(params.mask.query_length), params.query_heads, params.batch);
  launch_flash_kernel(flash_backward_q_kernel<T, kHeadTile>, grid,
                      4 * kSharedTileBytes<T, kHeadTile>, params, stream);
}

}  // namespace longseq::cuda
