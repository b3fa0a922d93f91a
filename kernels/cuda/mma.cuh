// Warp-level tensor-core primitives (mma.sync m16n8k16 and ldmatrix, sm_80 and later) and the
// fragment layouts they imply. Lane = 4 * group + quad (group 0-7, quad 0-3); 16-bit pairs are
// packed low element first, as they lie in memory.
//   A (16 x 16, row-major):  a[0] = (group,     2quad, 2quad+1)   a[1] = (group + 8, 2quad, ...)
//                            a[2] = (group,     2quad + 8, ...)   a[3] = (group + 8, 2quad + 8,
//                            ...)
//   B (16 x 8, k x n):       b[0] = (k 2quad, 2quad+1; n group)   b[1] = (k 2quad + 8, ...; n
//   group) C (16 x 8, fp32):        c[0], c[1] = (group, 2quad, 2quad+1) c[2], c[3] = (group + 8,
//   ...)
// The C layout of two adjacent n-tiles is the A layout of one 16-wide k-slice, so a score tile
// becomes the A operand of the next product without leaving registers.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace longseq::cuda {

template <typename T>
__device__ __forceinline__ void mma_16x8x16(float (&c)[4], const std::uint32_t (&a)[4],
                                            const std::uint32_t (&b)[2]);

template <>
__device__ __forceinline__ void mma_16x8x16<__nv_bfloat16>(float (&c)[4],
                                                           const std::uint32_t (&a)[4],
                                                           const std::uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

template <>
__device__ __forceinline__ void mma_16x8x16<__half>(float (&c)[4], const std::uint32_t (&a)[4],
                                                    const std::uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, "
      "%9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// Four 8x8 16-bit matrices; lane L gives the address of row L % 8 of matrix L / 8, and register i
// receives matrix i at (group, 2quad..2quad+1), or with `transpose` at (2quad..2quad+1, group).
template <bool kTranspose>
__device__ __forceinline__ void load_matrix_x4(std::uint32_t (&r)[4], const void* row_address) {
  const auto address = static_cast<std::uint32_t>(__cvta_generic_to_shared(row_address));
  if constexpr (kTranspose) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(address)
                 : "memory");
  } else {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(address)
                 : "memory");
  }
}

// A fragment of the 16 x 16 block at (row0, col0) of a row-major shared tile (ld elements a row).
template <typename T>
__device__ __forceinline__ void load_a_fragment(std::uint32_t (&a)[4], const T* tile, int ld,
                                                int row0, int col0) {
  const int lane = static_cast<int>(threadIdx.x) % 32;
  // Matrices: (rows 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15).
  load_matrix_x4<false>(a, tile + (row0 + lane % 16) * ld + col0 + (lane / 16) * 8);
}

// B fragments of two adjacent n-tiles (n0, n0 + 8) for k-slice k0, from a shared tile stored
// n-major: tile[n][k] (a key tile when B = K^T). b[t] is the fragment of n-tile t.
template <typename T>
__device__ __forceinline__ void load_b_fragments_n_major(std::uint32_t (&b)[2][2], const T* tile,
                                                         int ld, int n0, int k0) {
  const int lane = static_cast<int>(threadIdx.x) % 32;
  // Matrices: (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15).
  std::uint32_t r[4];
  load_matrix_x4<false>(r,
                        tile + (n0 + lane % 8 + (lane / 16) * 8) * ld + k0 + ((lane / 8) % 2) * 8);
  b[0][0] = r[0];
  b[0][1] = r[1];
  b[1][0] = r[2];
  b[1][1] = r[3];
}

// The same from a shared tile stored k-major: tile[k][n] (a value tile when B = V).
template <typename T>
__device__ __forceinline__ void load_b_fragments_k_major(std::uint32_t (&b)[2][2], const T* tile,
                                                         int ld, int k0, int n0) {
  const int lane = static_cast<int>(threadIdx.x) % 32;
  // Matrices: (k 0-7, n 0-7), (k 8-15, n 0-7), (k 0-7, n 8-15), (k 8-15, n 8-15), transposed.
  std::uint32_t r[4];
  load_matrix_x4<true>(r, tile + (k0 + lane % 16) * ld + n0 + (lane / 16) * 8);
  b[0][0] = r[0];
  b[0][1] = r[1];
  b[1][0] = r[2];
  b[1][1] = r[3];
}

template <typename T>
__device__ __forceinline__ std::uint32_t pack_pair(float low, float high);

template <>
__device__ __forceinline__ std::uint32_t pack_pair<__nv_bfloat16>(float low, float high) {
  const __nv_bfloat162 pair = __floats2bfloat162_rn(low, high);  // .x = low half
  return *reinterpret_cast<const std::uint32_t*>(&pair);
}

template <>
__device__ __forceinline__ std::uint32_t pack_pair<__half>(float low, float high) {
  const __half2 pair = __floats2half2_rn(low, high);
  return *reinterpret_cast<const std::uint32_t*>(&pair);
}

// The A fragment of k-slice `slice` (columns 16 slice .. 16 slice + 15) of a 16-row fp32 tile
// held as C fragments c[n-tile][4].
template <typename T, int kTiles>
__device__ __forceinline__ void accumulator_to_a_fragment(std::uint32_t (&a)[4],
                                                          const float (&c)[kTiles][4], int slice) {
  a[0] = pack_pair<T>(c[2 * slice][0], c[2 * slice][1]);
  a[1] = pack_pair<T>(c[2 * slice][2], c[2 * slice][3]);
  a[2] = pack_pair<T>(c[2 * slice + 1][0], c[2 * slice + 1][1]);
  a[3] = pack_pair<T>(c[2 * slice + 1][2], c[2 * slice + 1][3]);
}

}  // namespace longseq::cuda
