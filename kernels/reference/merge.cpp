// Reference log-sum-exp merge of partial attention results, row by row in double.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/reference.h"
#include "kernels/reference/values.h"

namespace longseq::reference {

namespace {

constexpr double kNegativeInfinity = -std::numeric_limits<double>::infinity();

struct Partials {
  std::int64_t rows = 0;                  // B * H * N
  std::int64_t row_size = 0;              // D
  std::vector<std::vector<double>> outs;  // [s] (rows, D)
  std::vector<std::vector<double>> lses;  // [s] (rows)
};

Partials read_partials(const char* op, std::span<const Tensor> outs, std::span<const Tensor> lses) {
  LONGSEQ_CHECK(!outs.empty() && outs.size() == lses.size(),
                "[{}] {} partial outs for {} partial lses", op, outs.size(), lses.size());
  Partials partials;
  const Tensor& first_lse = lses.front();
  partials.rows = first_lse.numel();
  LONGSEQ_CHECK(first_lse.rank() >= 1 && outs.front().rank() == first_lse.rank() + 1,
                "[{}] outs must be lses' shape plus a head dim, got {} and {}", op,
                outs.front().describe(), first_lse.describe());
  partials.row_size = outs.front().size(-1);
  Shape out_shape = first_lse.shape();
  out_shape.push_back(partials.row_size);
  for (std::size_t s = 0; s < outs.size(); ++s) {
    check_shape(op, "outs[s]", outs[s], out_shape);
    check_shape(op, "lses[s]", lses[s], first_lse.shape());
    partials.outs.push_back(values_of(op, outs[s]));
    partials.lses.push_back(values_of(op, lses[s]));
  }
  return partials;
}

// Merged log-sum-exp of each row: max + log sum_s exp(LSE_s - max); -inf when every partial is
// empty.
std::vector<double> merged_lse(const Partials& partials) {
  std::vector<double> lse(static_cast<std::size_t>(partials.rows), kNegativeInfinity);
  for (std::int64_t row = 0; row < partials.rows; ++row) {
    double row_max = kNegativeInfinity;
    for (const std::vector<double>& part : partials.lses) {
      row_max = std::max(row_max, part[row]);
    }
    if (row_max == kNegativeInfinity) {
      continue;
    }
    double sum = 0.0;
    for (const std::vector<double>& part : partials.lses) {
      if (part[row] != kNegativeInfinity) {
        sum += std::exp(part[row] - row_max);
      }
    }
    lse[row] = row_max + std::log(sum);
  }
  return lse;
}

// exp(LSE_s - LSE): the share of partial s in a row; 0 for a partial that saw no key.
double merge_share(double part_lse, double total_lse) {
  return part_lse == kNegativeInfinity ? 0.0 : std::exp(part_lse - total_lse);
}

std::vector<double> merged_out(const Partials& partials, const std::vector<double>& lse) {
  std::vector<double> out(static_cast<std::size_t>(partials.rows * partials.row_size), 0.0);
  for (std::size_t s = 0; s < partials.outs.size(); ++s) {
    for (std::int64_t row = 0; row < partials.rows; ++row) {
      const double share = merge_share(partials.lses[s][row], lse[row]);
      for (std::int64_t d = 0; d < partials.row_size; ++d) {
        out[row * partials.row_size + d] += share * partials.outs[s][row * partials.row_size + d];
      }
    }
  }
  return out;
}

}  // namespace

void merge_attention_forward(std::span<const Tensor> outs, std::span<const Tensor> lses,
                             const Tensor& out, const Tensor& lse) {
  const char* op = "reference::merge_attention_forward";
  const Partials partials = read_partials(op, outs, lses);
  check_shape(op, "out", out, outs.front().shape());
  check_shape(op, "lse", lse, lses.front().shape());
  const std::vector<double> lse_values = merged_lse(partials);
  store(op, out, merged_out(partials, lse_values));
  store(op, lse, lse_values);
}

// With w_s = exp(LSE_s - LSE): dO/dO_s = w_s, dLSE/dLSE_s = w_s and dO/dLSE_s = w_s (O_s - O).
void merge_attention_backward(const Tensor& grad_out, const Tensor& grad_lse,
                              std::span<const Tensor> outs, std::span<const Tensor> lses,
                              std::span<const Tensor> grad_outs,
                              std::span<const Tensor> grad_lses) {
  const char* op = "reference::merge_attention_backward";
  const Partials partials = read_partials(op, outs, lses);
  LONGSEQ_CHECK(grad_outs.size() == outs.size() && grad_lses.size() == outs.size(),
                "[{}] {} partials but {} grad_outs and {} grad_lses", op, outs.size(),
                grad_outs.size(), grad_lses.size());
  check_shape(op, "grad_out", grad_out, outs.front().shape());
  const std::vector<double> grad_out_values = values_of(op, grad_out);
  std::vector<double> grad_lse_values(static_cast<std::size_t>(partials.rows), 0.0);
  if (grad_lse.defined() && grad_lse.numel() > 0) {
    check_shape(op, "grad_lse", grad_lse, lses.front().shape());
    grad_lse_values = values_of(op, grad_lse);
  }
  const std::vector<double> lse = merged_lse(partials);
  const std::vector<double> out = merged_out(partials, lse);
  const std::int64_t width = partials.row_size;
  for (std::size_t s = 0; s < partials.outs.size(); ++s) {
    check_shape(op, "grad_outs[s]", grad_outs[s], outs[s].shape());
    check_shape(op, "grad_lses[s]", grad_lses[s], lses[s].shape());
    std::vector<double> grad_part_out(static_cast<std::size_t>(partials.rows * width), 0.0);
    std::vector<double> grad_part_lse(static_cast<std::size_t>(partials.rows), 0.0);
    for (std::int64_t row = 0; row < partials.rows; ++row) {
      const double share = merge_share(partials.lses[s][row], lse[row]);
      if (share == 0.0) {
        continue;
      }
      double projection = 0.0;  // <dO, O_s - O>
      for (std::int64_t d = 0; d < width; ++d) {
        const std::int64_t at = row * width + d;
        grad_part_out[at] = share * grad_out_values[at];
        projection += grad_out_values[at] * (partials.outs[s][at] - out[at]);
      }
      grad_part_lse[row] = share * (projection + grad_lse_values[row]);
    }
    store(op, grad_outs[s], grad_part_out);
    store(op, grad_lses[s], grad_part_lse);
  }
}

}  // namespace longseq::reference
