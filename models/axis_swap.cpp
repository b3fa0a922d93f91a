#include "models/axis_swap.h"

#include <algorithm>
#include <cstdint>

#include "runtime/error.h"

namespace longseq {

void swap_middle_axes(const Tensor& from, const Tensor& to) {
  LONGSEQ_CHECK(from.rank() == 3 || from.rank() == 4, "[swap_middle_axes] 3-D or 4-D, got {}",
                from.describe());
  const std::int64_t outer = from.size(0);
  const std::int64_t m = from.size(1);
  const std::int64_t n = from.size(2);
  const std::int64_t inner = from.rank() == 4 ? from.size(3) : 1;
  Shape expected = from.shape();
  std::swap(expected[1], expected[2]);
  LONGSEQ_CHECK(to.shape() == expected && from.is_contiguous() && to.is_contiguous(),
                "[swap_middle_axes] {} cannot receive the swap of {}", to.describe(),
                from.describe());
  const float* source = from.data<float>();
  float* destination = to.data<float>();
  for (std::int64_t a = 0; a < outer; ++a) {
    const float* block = source + a * m * n * inner;
    float* swapped = destination + a * m * n * inner;
    for (std::int64_t i = 0; i < m; ++i) {
      for (std::int64_t j = 0; j < n; ++j) {
        std::copy_n(block + (i * n + j) * inner, inner, swapped + (j * m + i) * inner);
      }
    }
  }
}

}  // namespace longseq
