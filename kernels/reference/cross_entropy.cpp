// Reference softmax cross-entropy over the last dimension: loss = lse(logits) - logits[target].
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/reference.h"
#include "kernels/reference/values.h"

namespace longseq::reference {

namespace {

struct Problem {
  std::int64_t rows = 0;
  std::int64_t vocabulary = 0;
  std::vector<std::int32_t> targets;
};

Problem read_problem(const char* op, const Tensor& logits, const Tensor& targets) {
  LONGSEQ_CHECK(logits.rank() == 2, "[{}] logits must be (R, V), got {}", op, logits.describe());
  Problem problem{logits.size(0), logits.size(1), {}};
  check_shape(op, "targets", targets, {problem.rows});
  LONGSEQ_CHECK(
      targets.dtype() == DType::i32 && targets.device() == Device::cpu && targets.is_contiguous(),
      "[{}] targets must be contiguous i32 on the CPU, got {}", op, targets.describe());
  const std::int32_t* target_values = targets.data<std::int32_t>();
  problem.targets.assign(target_values, target_values + problem.rows);
  for (const std::int32_t target : problem.targets) {
    LONGSEQ_CHECK(target < problem.vocabulary, "[{}] target {} outside a vocabulary of {}", op,
                  target, problem.vocabulary);
  }
  return problem;
}

double row_lse(const double* row, std::int64_t width) {
  const double row_max = *std::max_element(row, row + width);
  double sum = 0.0;
  for (std::int64_t c = 0; c < width; ++c) {
    sum += std::exp(row[c] - row_max);
  }
  return row_max + std::log(sum);
}

}  // namespace

void cross_entropy_forward(const Tensor& logits, const Tensor& targets, const Tensor& losses) {
  const char* op = "reference::cross_entropy_forward";
  const Problem problem = read_problem(op, logits, targets);
  check_shape(op, "losses", losses, {problem.rows});
  const std::vector<double> logit_values = values_of(op, logits);
  std::vector<double> loss_values(static_cast<std::size_t>(problem.rows), 0.0);
  for (std::int64_t r = 0; r < problem.rows; ++r) {
    if (problem.targets[r] < 0) {
      continue;  // ignored row
    }
    const double* row = &logit_values[r * problem.vocabulary];
    loss_values[r] = row_lse(row, problem.vocabulary) - row[problem.targets[r]];
  }
  store(op, losses, loss_values);
}

void cross_entropy_backward(const Tensor& grad_losses, const Tensor& logits, const Tensor& targets,
                            const Tensor& grad_logits) {
  const char* op = "reference::cross_entropy_backward";
  const Problem problem = read_problem(op, logits, targets);
  check_shape(op, "grad_losses", grad_losses, {problem.rows});
  check_shape(op, "grad_logits", grad_logits, logits.shape());
  const std::vector<double> logit_values = values_of(op, logits);
  const std::vector<double> grad_loss_values = values_of(op, grad_losses);
  std::vector<double> grad_values(logit_values.size(), 0.0);
  for (std::int64_t r = 0; r < problem.rows; ++r) {
    if (problem.targets[r] < 0) {
      continue;
    }
    const double* row = &logit_values[r * problem.vocabulary];
    double* grad_row = &grad_values[r * problem.vocabulary];
    const double lse = row_lse(row, problem.vocabulary);
    for (std::int64_t c = 0; c < problem.vocabulary; ++c) {
      grad_row[c] = grad_loss_values[r] * std::exp(row[c] - lse);
    }
    grad_row[problem.targets[r]] -= grad_loss_values[r];
  }
  store(op, grad_logits, grad_values);
}

}  // namespace longseq::reference
