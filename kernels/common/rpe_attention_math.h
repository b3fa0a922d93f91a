// Kernelized attention with relative positions (rpe_fft, MECHANISMS.md section 6): the pointwise
// math shared by the CPU, CUDA and reference implementations. Features are phi = elu + 1
// (kernels/common/linear_attention_math.h).
//   c_o     = exp(b_o - m) for the offsets o = j - i in use (causal: o <= 0), 0 for the others;
//             m = the largest b in use of the head (it cancels in the ratio num / den)
//   num'_i  = sum_j c_{j - i} phi(q_i)^T phi(k_j) [v_j | 1]^T    (Dv + 1 columns: num | den)
//   out_i   = num_i / max(den_i, eps)
// Gradient of the readout, W'_i = dL/d num'_i = [g_i / den_i | dL/d den_i] with
//   dL/d den_i = -(g_i . out_i) / den_i where den_i > eps, 0 where the clamp holds.
#pragma once

#include <cmath>

#include "kernels/common/linear_attention_math.h"
#include "runtime/host_device.h"

namespace longseq {

inline constexpr float kRpeAttentionEps = 1e-6f;

// Offset o = j - i of entry e of b (H, 2N - 1).
LONGSEQ_HOST_DEVICE long long rpe_offset(long long entry, long long length) {
  return entry - (length - 1);
}

// Whether offset o carries weight (causal: only keys at or before the query).
LONGSEQ_HOST_DEVICE bool rpe_offset_used(long long offset, bool causal) {
  return !causal || offset <= 0;
}

LONGSEQ_HOST_DEVICE float rpe_weight(float b, float shift) { return expf(b - shift); }
LONGSEQ_HOST_DEVICE double rpe_weight(double b, double shift) { return exp(b - shift); }

template <typename T>
LONGSEQ_HOST_DEVICE T rpe_clamped_denominator(T den, T eps) {
  return den > eps ? den : eps;
}

// dL/d den from sum_c g_c out_c, den before the clamp, and eps.
template <typename T>
LONGSEQ_HOST_DEVICE T rpe_denominator_gradient(T grad_dot_out, T den, T eps) {
  return den > eps ? -grad_dot_out / den : T(0);
}

// Column layout of a feature block [a0, a0 + features) of the Dk (Dv + 1) product columns: column
// (a - a0) width + e holds phi_a(k_j) v'_j[e], width = the value columns per feature.
LONGSEQ_HOST_DEVICE long long rpe_column(long long feature_in_block, long long value,
                                         long long width) {
  return feature_in_block * width + value;
}

}  // namespace longseq
