// Momentum attention math shared by the CPU, CUDA and reference implementations (MECHANISMS.md
// section 4; kernels/momentum_attention.h). With a = gamma / (1 - mu):
//   S_i = a (C_i - mu D_i)                  the momentum state read out by query i
//   weight of key j for query i >= j:       gamma (1 + mu + ... + mu^(i-j)) = a (1 - mu^(i-j+1))
//   coefficient of D_in for query t         -a mu^(t+2)   (t = position after the incoming state)
// The feature map and the normaliser are those of linear attention
// (kernels/common/linear_attention_math.h).
#pragma once

#include "kernels/common/linear_attention_math.h"
#include "runtime/host_device.h"

namespace longseq {

// a = gamma / (1 - mu): the scale of the momentum state (finite for mu < 1).
template <typename T>
LONGSEQ_HOST_DEVICE T momentum_scale(T momentum, T step) {
  return step / (T(1) - momentum);
}

// mu^n by repeated squaring (mu^0 = 1, also for mu = 0).
template <typename T>
LONGSEQ_HOST_DEVICE T momentum_power(T momentum, long long n) {
  T result = T(1);
  T base = momentum;
  while (n > 0) {
    if (n & 1) {
      result *= base;
    }
    base *= base;
    n >>= 1;
  }
  return result;
}

// gamma (1 + mu + ... + mu^distance): the weight of a key `distance` positions before the query,
// summed term by term so that it is exact at mu = 0 and has no cancellation near mu = 1.
template <typename T>
LONGSEQ_HOST_DEVICE T momentum_key_weight(T momentum, T step, long long distance) {
  T sum = T(1);
  T term = T(1);
  for (long long r = 0; r < distance; ++r) {
    term *= momentum;
    sum += term;
  }
  return step * sum;
}

// The numerator of one output element from the readouts of the state: a (c - mu^(t+2) d) with
// c = phi(q_t)^T C_in[:, col], d = phi(q_t)^T D_in[:, col], decay = mu^(t+2).
template <typename T>
LONGSEQ_HOST_DEVICE T momentum_readout(T scale, T decay, T c, T d) {
  return scale * (c - decay * d);
}

}  // namespace longseq
