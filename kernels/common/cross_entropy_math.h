// Softmax cross-entropy formulas shared by the CPU and CUDA kernels, and the target check both
// backends apply. Per row r with log-sum-exp lse = log sum_j exp(logits[j]):
//   loss          = lse - logits[target]                       (0 when target < 0: ignored row)
//   grad_logits_j = grad_loss * (exp(logits_j - lse) - [j == target])    (0 on ignored rows)
#pragma once

#include <cstdint>

#include "kernels/common/softmax_math.h"
#include "runtime/error.h"
#include "runtime/host_device.h"

namespace longseq {

// Running maximum and sum of exp(logit - maximum) over part of a row; the empty part is
// {-inf, 0}. Parts combine in any grouping (the CUDA kernel merges them across threads).
struct SoftmaxPartial {
  float maximum;
  float sum;
};

LONGSEQ_HOST_DEVICE SoftmaxPartial empty_softmax_partial() {
  return SoftmaxPartial{negative_infinity(), 0.0f};
}

// One exponential per logit: the running sum is rescaled only when the maximum grows.
LONGSEQ_HOST_DEVICE SoftmaxPartial add_logit(SoftmaxPartial partial, float logit) {
  if (logit > partial.maximum) {
    return SoftmaxPartial{logit, partial.sum * rescale_factor(partial.maximum, logit) + 1.0f};
  }
  return SoftmaxPartial{partial.maximum, partial.sum + exp_shifted(logit, partial.maximum)};
}

LONGSEQ_HOST_DEVICE SoftmaxPartial merge_softmax_partials(SoftmaxPartial a, SoftmaxPartial b) {
  const float maximum = a.maximum > b.maximum ? a.maximum : b.maximum;
  return SoftmaxPartial{maximum, a.sum * rescale_factor(a.maximum, maximum) +
                                     b.sum * rescale_factor(b.maximum, maximum)};
}

LONGSEQ_HOST_DEVICE bool target_ignored(std::int32_t target) { return target < 0; }

LONGSEQ_HOST_DEVICE float cross_entropy_loss(float lse, float target_logit) {
  return lse - target_logit;
}

LONGSEQ_HOST_DEVICE float cross_entropy_grad_logit(float grad_loss, float logit, float lse,
                                                   bool is_target) {
  return grad_loss * (expf(logit - lse) - (is_target ? 1.0f : 0.0f));
}

// Rejects a target at or past the vocabulary (bad data, reported to the user); host only.
inline void require_targets_in_vocabulary(const char* op, const std::int32_t* targets,
                                          std::int64_t rows, std::int64_t vocabulary) {
  for (std::int64_t row = 0; row < rows; ++row) {
    LONGSEQ_REQUIRE(targets[row] < vocabulary,
                    "[{}] target {} of row {} is outside the vocabulary of {} logits", op,
                    targets[row], row, vocabulary);
  }
}

}  // namespace longseq
