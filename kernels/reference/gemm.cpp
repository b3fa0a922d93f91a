// Reference matrix product c = alpha op(a) op(b) + beta c, one dot product per element in double.
#include <cstdint>
#include <vector>

#include "kernels/reference.h"
#include "kernels/reference/values.h"

namespace longseq::reference {

void gemm(const Tensor& a, bool transpose_a, const Tensor& b, bool transpose_b, const Tensor& c,
          float alpha, float beta) {
  const char* op = "reference::gemm";
  LONGSEQ_CHECK((a.rank() == 2 || a.rank() == 3) && b.rank() == a.rank() && c.rank() == a.rank(),
                "[{}] a, b, c must all be matrices or all batches, got {}, {}, {}", op,
                a.describe(), b.describe(), c.describe());
  const bool batched = a.rank() == 3;
  const std::int64_t batch = batched ? a.size(0) : 1;
  // Stored extents of a (rows_a, columns_a) and b; op() swaps them when transposed.
  const std::int64_t rows_a = a.size(-2);
  const std::int64_t columns_a = a.size(-1);
  const std::int64_t rows_b = b.size(-2);
  const std::int64_t columns_b = b.size(-1);
  const std::int64_t m = transpose_a ? columns_a : rows_a;
  const std::int64_t inner = transpose_a ? rows_a : columns_a;
  const std::int64_t n = transpose_b ? rows_b : columns_b;
  LONGSEQ_CHECK((transpose_b ? columns_b : rows_b) == inner,
                "[{}] inner dimensions differ: {} and {}", op, a.describe(), b.describe());
  LONGSEQ_CHECK(!batched || (b.size(0) == batch && c.size(0) == batch), "[{}] batch sizes differ",
                op);
  LONGSEQ_CHECK(c.size(-2) == m && c.size(-1) == n, "[{}] c must be ({}, {}), got {}", op, m, n,
                c.describe());

  const std::vector<double> a_values = values_of(op, a);
  const std::vector<double> b_values = values_of(op, b);
  // BLAS convention: with beta = 0, c is not read (it may hold anything, NaN included).
  std::vector<double> c_values =
      beta != 0.0f ? values_of(op, c)
                   : std::vector<double>(static_cast<std::size_t>(c.numel()), 0.0);
  for (std::int64_t batch_index = 0; batch_index < batch; ++batch_index) {
    const double* a_matrix = &a_values[batch_index * rows_a * columns_a];
    const double* b_matrix = &b_values[batch_index * rows_b * columns_b];
    double* c_matrix = &c_values[batch_index * m * n];
    for (std::int64_t i = 0; i < m; ++i) {
      for (std::int64_t j = 0; j < n; ++j) {
        double sum = 0.0;
        for (std::int64_t l = 0; l < inner; ++l) {
          const double a_element =
              transpose_a ? a_matrix[l * columns_a + i] : a_matrix[i * columns_a + l];
          const double b_element =
              transpose_b ? b_matrix[j * columns_b + l] : b_matrix[l * columns_b + j];
          sum += a_element * b_element;
        }
        const double previous =
            beta != 0.0f ? static_cast<double>(beta) * c_matrix[i * n + j] : 0.0;
        c_matrix[i * n + j] = static_cast<double>(alpha) * sum + previous;
      }
    }
  }
  store(op, c, c_values);
}

}  // namespace longseq::reference
