#include "tests/parallel/mpi/shard_comparison.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "kernels/random.h"

namespace longseq {

Tensor normal(ComputeContext& context, const Shape& shape, std::uint64_t seed, std::uint64_t stream,
              float stddev) {
  const Tensor tensor = Tensor::empty(shape, DType::f32);
  fill_normal(context, tensor, {seed, stream}, 0.0f, stddev);
  return tensor;
}

double shard_relative_error(const Tensor& actual, const Tensor& full, const SequenceLayout& layout,
                            int rank, float padding) {
  const Tensor expected = scatter_shard(full, layout, rank);
  const std::int64_t outer = actual.size(0) * actual.size(1);
  const std::int64_t shard = layout.shard_length();
  const std::int64_t row = actual.rank() == 4 ? actual.size(3) : 1;
  const float* a = actual.data<float>();
  const float* e = expected.data<float>();
  double max_error = 0.0;
  double max_reference = 0.0;
  for (std::int64_t o = 0; o < outer; ++o) {
    for (std::int64_t local = 0; local < shard; ++local) {
      const bool valid = layout.global_position(rank, local) < layout.global_length();
      for (std::int64_t d = 0; d < row; ++d) {
        const std::int64_t at = (o * shard + local) * row + d;
        if (!valid) {
          EXPECT_EQ(a[at], padding) << "padding holds " << a[at];
          continue;
        }
        max_error = std::max(max_error, std::abs(static_cast<double>(a[at]) - e[at]));
        max_reference = std::max(max_reference, std::abs(static_cast<double>(e[at])));
      }
    }
  }
  return max_reference > 0.0 ? max_error / max_reference : max_error;
}

double relative_error(const Tensor& actual, const Tensor& expected) {
  double max_error = 0.0;
  double max_reference = 0.0;
  for (std::int64_t e = 0; e < actual.numel(); ++e) {
    const double reference = expected.data<float>()[e];
    max_error = std::max(max_error, std::abs(actual.data<float>()[e] - reference));
    max_reference = std::max(max_reference, std::abs(reference));
  }
  return max_reference > 0.0 ? max_error / max_reference : max_error;
}

}  // namespace longseq
