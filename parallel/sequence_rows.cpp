#include "parallel/sequence_rows.h"

#include <algorithm>
#include <cstring>

namespace longseq {

SequenceRows SequenceRows::of(const Tensor& tensor, int sequence_dim) {
  const int dim = sequence_dim < 0 ? sequence_dim + tensor.rank() : sequence_dim;
  LONGSEQ_CHECK(dim >= 0 && dim < tensor.rank(), "[sequence_rows] dimension {} of {}", sequence_dim,
                tensor.describe());
  LONGSEQ_CHECK(tensor.device() == Device::cpu && tensor.is_contiguous(),
                "[sequence_rows] needs a contiguous CPU tensor, got {}", tensor.describe());
  SequenceRows rows;
  rows.data = static_cast<char*>(tensor.raw_data());
  rows.positions = tensor.size(dim);
  rows.dtype = tensor.dtype();
  std::int64_t inner = 1;
  for (int d = 0; d < tensor.rank(); ++d) {
    if (d < dim) {
      rows.outer *= tensor.size(d);
    } else if (d > dim) {
      inner *= tensor.size(d);
    }
  }
  rows.row_bytes = static_cast<std::size_t>(inner) * dtype_size(tensor.dtype());
  return rows;
}

void copy_rows(const SequenceRows& source, std::int64_t source_begin, std::int64_t source_stride,
               const SequenceRows& destination, std::int64_t destination_begin,
               std::int64_t destination_stride, std::int64_t count) {
  if (count <= 0) {
    return;
  }
  LONGSEQ_CHECK(source.dtype == destination.dtype && source.row_bytes == destination.row_bytes &&
                    source.outer == destination.outer,
                "[copy_rows] source and destination rows differ");
  LONGSEQ_CHECK(source_begin + (count - 1) * source_stride < source.positions &&
                    destination_begin + (count - 1) * destination_stride < destination.positions,
                "[copy_rows] rows out of range");
  const std::size_t row = source.row_bytes;
  const bool dense = source_stride == 1 && destination_stride == 1;
  for (std::int64_t o = 0; o < source.outer; ++o) {
    const char* from = source.data + (o * source.positions + source_begin) * row;
    char* to = destination.data + (o * destination.positions + destination_begin) * row;
    if (dense) {
      std::memcpy(to, from, static_cast<std::size_t>(count) * row);
      continue;
    }
    for (std::int64_t i = 0; i < count; ++i) {
      std::memcpy(to + i * destination_stride * row, from + i * source_stride * row, row);
    }
  }
}

void fill_rows(const SequenceRows& rows, std::int64_t begin, std::int64_t count, float value) {
  LONGSEQ_CHECK(rows.dtype == DType::f32, "[fill_rows] needs fp32 rows");
  LONGSEQ_CHECK(begin >= 0 && begin + count <= rows.positions, "[fill_rows] rows out of range");
  const std::int64_t per_row = static_cast<std::int64_t>(rows.row_bytes / sizeof(float));
  for (std::int64_t o = 0; o < rows.outer; ++o) {
    float* first = reinterpret_cast<float*>(rows.data) + (o * rows.positions + begin) * per_row;
    std::fill(first, first + count * per_row, value);
  }
}

}  // namespace longseq
