// Row copies along the sequence dimension of contiguous CPU tensors: the one primitive behind
// scattering, gathering, packing runs and reordering to global order. A tensor is seen as
// (outer, positions, inner) around its sequence dimension; a "row" is one position's inner block.
#pragma once

#include <cstddef>
#include <cstdint>

#include "runtime/tensor.h"

namespace longseq {

struct SequenceRows {
  char* data = nullptr;
  std::int64_t outer = 1;
  std::int64_t positions = 0;
  std::size_t row_bytes = 0;
  DType dtype = DType::f32;

  // `tensor` must be a contiguous CPU tensor; sequence_dim may be negative (from the end).
  static SequenceRows of(const Tensor& tensor, int sequence_dim);
};

// For every outer index, copies `count` rows: source row source_begin + i * source_stride to
// destination row destination_begin + i * destination_stride. Same dtype and row size.
void copy_rows(const SequenceRows& source, std::int64_t source_begin, std::int64_t source_stride,
               const SequenceRows& destination, std::int64_t destination_begin,
               std::int64_t destination_stride, std::int64_t count);

// Sets rows [begin, begin + count) of every outer index of an fp32 tensor to `value`.
void fill_rows(const SequenceRows& rows, std::int64_t begin, std::int64_t count, float value);

}  // namespace longseq
