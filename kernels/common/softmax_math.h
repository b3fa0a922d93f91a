// Online-softmax and log-sum-exp merge math shared by the CPU and CUDA attention kernels.
// -inf stands for "no key seen yet"; every function is exact for it and never produces NaN.
#pragma once

#include <cmath>
#include <limits>

#include "runtime/host_device.h"

namespace longseq {

LONGSEQ_HOST_DEVICE float negative_infinity() { return -std::numeric_limits<float>::infinity(); }

// exp(x - m) with the convention exp(-inf - (-inf)) = 0: a row that has seen nothing stays empty.
LONGSEQ_HOST_DEVICE float exp_shifted(float x, float m) {
  return m == negative_infinity() ? 0.0f : expf(x - m);
}

// Rescale factor of the running sums when the running max goes from m_old to m_new.
LONGSEQ_HOST_DEVICE float rescale_factor(float m_old, float m_new) {
  return m_old == negative_infinity() ? 0.0f : expf(m_old - m_new);
}

// Final log-sum-exp of a row from its running max m and sum l: m + ln l, or -inf for an empty row.
LONGSEQ_HOST_DEVICE float finish_lse(float m, float l) {
  return (m == negative_infinity() || l <= 0.0f) ? negative_infinity() : m + logf(l);
}

// 1 / l for the output normalisation, 0 for an empty row (its output is 0).
LONGSEQ_HOST_DEVICE float inverse_sum(float l) { return l > 0.0f ? 1.0f / l : 0.0f; }

// log(exp(a) + exp(b)), stable, with -inf as the identity.
LONGSEQ_HOST_DEVICE float log_add_exp(float a, float b) {
  if (a == negative_infinity()) return b;
  if (b == negative_infinity()) return a;
  const float high = a > b ? a : b;
  const float low = a > b ? b : a;
  return high + log1pf(expf(low - high));
}

// Weight exp(lse_part - lse_total) of a partial result in a merge; 0 for an empty partial.
LONGSEQ_HOST_DEVICE float merge_weight(float lse_part, float lse_total) {
  return lse_part == negative_infinity() ? 0.0f : expf(lse_part - lse_total);
}

// Causal visibility from global positions: query at position p sees key at position s iff s <= p.
LONGSEQ_HOST_DEVICE bool causally_visible(long long query_position, long long key_position) {
  return key_position <= query_position;
}

}  // namespace longseq
