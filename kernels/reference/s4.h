// Reference S4 (kernels/s4.h) in plain loops and double, with dense full-state matrices: the
// N = 2M complex state of every mode and its conjugate, A = diag(Lambda, conj Lambda) - p p^*,
// Abar = (I - dt/2 A)^-1 (I + dt/2 A) by Gaussian elimination, K_l = C Abar^l Bbar by matrix
// powers. Parameters may be fp32 or fp64 CPU tensors.
#pragma once

#include "kernels/s4.h"

namespace longseq::reference {

// (H, L) fp64.
Tensor s4_kernel(const S4Parameters& parameters, std::int64_t length);

// The recurrence over u (B, H, L) from `initial` ((B, H, M, 2) or undefined: zero): y (B, H, L)
// and the final state (B, H, M, 2), both fp64.
struct S4Result {
  Tensor y;
  Tensor final;
};
S4Result s4_recurrence(const S4Parameters& parameters, const Tensor& u, const Tensor& initial);

}  // namespace longseq::reference
