// The tensor-core flash attention kernels of kernels/cuda/: their parameters and launchers.
// Launchers are instantiated once per (16-bit type, head-dim tile) in the flash_*_d<tile>.cu files
// so that nvcc builds them in parallel; kernels/cuda/flash_attention.cu picks one per call.
#pragma once

#include <cuda_runtime.h>

#include "kernels/cuda/attention_mask.cuh"

namespace longseq::cuda {

// Queries and keys per tile; each of the four warps of a block owns 16 rows of the tile.
inline constexpr int kFlashTile = 64;
inline constexpr int kFlashWarps = 4;
inline constexpr int kFlashThreads = 32 * kFlashWarps;

// Device pointers are to contiguous tensors of the element type T of the launcher:
//   q, out, grad_out, grad_q (B, Hq, Nq, D)   k, v, grad_k, grad_v (B, Hkv, Nk, D)
//   lse, delta (B, Hq, Nq) fp32
struct FlashParams {
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  void* out = nullptr;
  float* lse = nullptr;  // written by the forward pass, read by the backward passes
  const void* grad_out = nullptr;
  const float* delta = nullptr;  // rowsum(grad_out * out)
  void* grad_q = nullptr;
  void* grad_k = nullptr;
  void* grad_v = nullptr;
  int batch = 0;
  int query_heads = 0;
  int kv_heads = 0;
  int head_dim = 0;
  float scale = 0.0f;
  AttentionMask mask;  // also holds the query and key lengths
};

// out, lse from q, k, v.
template <typename T, int kHeadTile>
void launch_flash_forward(const FlashParams& params, cudaStream_t stream);
// grad_k, grad_v (one block per key tile and key/value head, summing its query heads).
template <typename T, int kHeadTile>
void launch_flash_backward_kv(const FlashParams& params, cudaStream_t stream);
// grad_q (one block per query tile and query head).
template <typename T, int kHeadTile>
void launch_flash_backward_q(const FlashParams& params, cudaStream_t stream);

}  // namespace longseq::cuda
