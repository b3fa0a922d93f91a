// Softmax cross-entropy on the CPU: rows in parallel, each row in two passes (maximum, then the
// sum of exponentials accumulated in double); formulas in kernels/common/cross_entropy_math.h.
#include <cstdint>

#include "kernels/backends.h"
#include "kernels/common/cross_entropy_math.h"

namespace longseq::cpu {

void cross_entropy_forward(ComputeContext& context, const Tensor& logits, const Tensor& targets,
                           const Tensor& losses, const Tensor& lse) {
  const std::int64_t rows = logits.size(0);
  const std::int64_t vocabulary = logits.size(1);
  const float* logit_values = logits.data<float>();               // (R, V)
  const std::int32_t* target_ids = targets.data<std::int32_t>();  // (R)
  float* loss_values = losses.data<float>();                      // (R)
  float* lse_values = lse.data<float>();                          // (R)
  require_targets_in_vocabulary("cross_entropy_forward", target_ids, rows, vocabulary);
#pragma omp parallel for schedule(static) num_threads(context.cpu_threads())
  for (std::int64_t row = 0; row < rows; ++row) {
    const float* row_logits = logit_values + row * vocabulary;
    float maximum = negative_infinity();
#pragma omp simd reduction(max : maximum)
    for (std::int64_t j = 0; j < vocabulary; ++j) {
      maximum = row_logits[j] > maximum ? row_logits[j] : maximum;
    }
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (std::int64_t j = 0; j < vocabulary; ++j) {
      sum += exp_shifted(row_logits[j], maximum);
    }
    const float row_lse = finish_lse(maximum, static_cast<float>(sum));
    lse_values[row] = row_lse;
    const std::int32_t target = target_ids[row];
    loss_values[row] =
        target_ignored(target) ? 0.0f : cross_entropy_loss(row_lse, row_logits[target]);
  }
}

void cross_entropy_backward(ComputeContext& context, const Tensor& grad_losses,
                            const Tensor& logits, const Tensor& targets, const Tensor& lse,
                            const Tensor& grad_logits) {
  const std::int64_t rows = logits.size(0);
  const std::int64_t vocabulary = logits.size(1);
  const float* grad_loss_values = grad_losses.data<float>();      // (R)
  const float* logit_values = logits.data<float>();               // (R, V)
  const std::int32_t* target_ids = targets.data<std::int32_t>();  // (R)
  const float* lse_values = lse.data<float>();                    // (R)
  float* grad_logit_values = grad_logits.data<float>();           // (R, V)
  require_targets_in_vocabulary("cross_entropy_backward", target_ids, rows, vocabulary);
#pragma omp parallel for schedule(static) num_threads(context.cpu_threads())
  for (std::int64_t row = 0; row < rows; ++row) {
    const float* row_logits = logit_values + row * vocabulary;
    float* row_grad = grad_logit_values + row * vocabulary;
    const std::int32_t target = target_ids[row];
    // An ignored row has no gradient at all (grad_losses of that row notwithstanding).
    const float grad_loss = target_ignored(target) ? 0.0f : grad_loss_values[row];
    const float row_lse = lse_values[row];
#pragma omp simd
    for (std::int64_t j = 0; j < vocabulary; ++j) {
      row_grad[j] = cross_entropy_grad_logit(grad_loss, row_logits[j], row_lse, j == target);
    }
  }
}

}  // namespace longseq::cpu
