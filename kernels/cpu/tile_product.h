// The one matrix-product micro-kernel of the CPU attention kernels:
//
//   C (m x n) = A (m x k) B (k x n)      or, accumulating,      C += A B
//
// A is read one element at a time through two strides, so a matrix or its transpose is passed
// without a copy. B and C are row-major with unit column stride and n a multiple of
// kTileColumnMultiple (callers pad columns with zeros). Each register tile holds kTileRows x 2
// vectors of accumulators: per step of k it loads 2 vectors of B and broadcasts kTileRows elements
// of A, so the loop is bound by FMA throughput, not by loads.
#pragma once

#include <array>
#include <cstdint>
#include <utility>

#include "kernels/cpu/vector_math.h"

namespace longseq::cpu {

inline constexpr int kTileColumnMultiple = 16;
static_assert(kTileColumnMultiple % kVectorWidth == 0);

// Accumulator rows per register tile: 12 of AVX2's 16 registers, 16 of AVX-512's 32.
#if defined(__AVX512F__)
inline constexpr int kTileRows = 8;
#else
inline constexpr int kTileRows = 6;
#endif
inline constexpr int kTileVectors = 2;

// A(i, p) = data[i * row_stride + p * inner_stride].
struct StridedMatrix {
  const float* data;
  std::int64_t row_stride;
  std::int64_t inner_stride;
};

// A row-major matrix with unit column stride.
struct RowMatrix {
  float* data;
  std::int64_t row_stride;
};

namespace detail {

template <int Rows, int Vectors>
void register_tile(std::int64_t k, StridedMatrix a, const float* b, std::int64_t b_row_stride,
                   float* c, std::int64_t c_row_stride, bool accumulate) {
  FloatVector sums[Rows][Vectors];
  for (int r = 0; r < Rows; ++r) {
    for (int v = 0; v < Vectors; ++v) {
      sums[r][v] =
          accumulate ? load_vector(c + r * c_row_stride + v * kVectorWidth) : FloatVector{};
    }
  }
  const float* a_rows[Rows];
  for (int r = 0; r < Rows; ++r) {
    a_rows[r] = a.data + r * a.row_stride;
  }
  for (std::int64_t p = 0; p < k; ++p) {
    FloatVector b_row[Vectors];
    for (int v = 0; v < Vectors; ++v) {
      b_row[v] = load_vector(b + p * b_row_stride + v * kVectorWidth);
    }
    for (int r = 0; r < Rows; ++r) {
      const FloatVector a_element = broadcast(a_rows[r][p * a.inner_stride]);
      for (int v = 0; v < Vectors; ++v) {
        sums[r][v] += a_element * b_row[v];
      }
    }
  }
  for (int r = 0; r < Rows; ++r) {
    for (int v = 0; v < Vectors; ++v) {
      store_vector(c + r * c_row_stride + v * kVectorWidth, sums[r][v]);
    }
  }
}

using RegisterTile = void (*)(std::int64_t, StridedMatrix, const float*, std::int64_t, float*,
                              std::int64_t, bool);

// register_tile<rows, Vectors> for rows = 0 .. kTileRows (entry 0 unused).
template <int Vectors, std::size_t... Rows>
constexpr std::array<RegisterTile, sizeof...(Rows) + 1> register_tiles_by_rows(
    std::index_sequence<Rows...>) {
  return {nullptr, &register_tile<static_cast<int>(Rows) + 1, Vectors>...};
}

template <int Vectors>
inline constexpr auto kRegisterTiles =
    register_tiles_by_rows<Vectors>(std::make_index_sequence<kTileRows>());

}  // namespace detail

// C = A B (accumulate = false) or C += A B; shapes as in the file comment.
inline void tile_product(std::int64_t m, std::int64_t n, std::int64_t k, StridedMatrix a,
                         const float* b, std::int64_t b_row_stride, RowMatrix c, bool accumulate) {
  constexpr std::int64_t kWide = kTileVectors * kVectorWidth;
  // Column panels outermost: the k x kWide panel of B stays in L1 while every row block uses it.
  for (std::int64_t column = 0; column < n; column += kWide) {
    const bool wide = column + kWide <= n;
    const auto& tiles = wide ? detail::kRegisterTiles<kTileVectors> : detail::kRegisterTiles<1>;
    for (std::int64_t row = 0; row < m; row += kTileRows) {
      const std::int64_t rows = m - row < kTileRows ? m - row : kTileRows;
      const StridedMatrix a_block{a.data + row * a.row_stride, a.row_stride, a.inner_stride};
      tiles[rows](k, a_block, b + column, b_row_stride, c.data + row * c.row_stride + column,
                  c.row_stride, accumulate);
    }
  }
}

}  // namespace longseq::cpu
