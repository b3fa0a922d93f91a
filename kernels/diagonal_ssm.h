// Diagonal state-space models: S4D and DSS (Gu et al.; Gupta et al.; MECHANISMS.md section 10).
//
// Per channel h (H channels) and complex mode m (M modes), with dt = exp(log_dt[h]), zero-order
// hold:
//   Abar = exp(dt Lambda),  Bbar = (Abar - 1) / Lambda * B
//   x_l  = Abar x_{l-1} + Bbar u_l           (complex state (H, M) per batch row)
//   y_l  = scale * Re(sum_m C_m x_l,m) + D u_l
//   K_l  = scale * Re(sum_m C_m Abar_m^l Bbar_m)       (so y = K * u + D u, a causal convolution)
// scale = 2 for S4D (M = N/2 modes stand for N/2 conjugate pairs of a real state of size N) and 1
// for DSS-exp (Lambda shared by every channel, the DSS kernel of Gupta et al.). Complex numbers are
// stored as a trailing dimension of 2 (re, im), fp32.
//
// Handoff between consecutive pieces of a sequence: a piece of length L that starts from state
// x_in adds y_l += scale Re(sum_m C_m Abar_m^(l+1) x_in,m) (l = 0 .. L-1) to its outputs and ends
// in x_out = Abar^L x_in + x_local, where x_local is its final state from zero: an affine map, so
// pieces compose by a scan (parallel/diagonal_ssm_parallel.h).
#pragma once

#include <cstdint>

#include "runtime/context.h"
#include "runtime/tensor.h"

namespace longseq {

enum class DiagonalSsmKind : std::uint8_t { s4d, dss };

struct DiagonalSsmParameters {
  Tensor log_dt;  // (H) fp32
  Tensor lambda;  // (H, M, 2) for S4D, (1, M, 2) for DSS (shared); real parts < 0
  Tensor b;       // (H, M, 2)
  Tensor c;       // (H, M, 2)
  Tensor d;       // (H)
};

// The initialisations of the papers, drawn from the counter-based stream `seed` (identical on
// every rank and device), fp32 on the CPU:
//   S4D-Lin: Lambda_m = -1/2 + i pi m, B = 1, C ~ N(0, 1/2) per real and imaginary part,
//            log dt uniform in [log 1e-3, log 1e-1], D ~ N(0, 1); M = state_size / 2.
//   DSS-exp: Lambda shared by the channels, drawn at random (negative real parts, imaginary parts
//            spread over the modes, as the DSS paper's random init); B = 1 (folded into C);
//            dt = dt_fixed when it is positive (GSS: 1), else log-uniform as S4D; M = state_size.
DiagonalSsmParameters make_s4d_parameters(std::int64_t channels, std::int64_t state_size,
                                          std::uint64_t seed);
DiagonalSsmParameters make_dss_parameters(std::int64_t channels, std::int64_t state_size,
                                          std::uint64_t seed, double dt_fixed = 0.0);
// Zero tensors of the same shapes (for gradients).
DiagonalSsmParameters zeros_like(const DiagonalSsmParameters& parameters);

// scale of the kernel formula: 2 for S4D, 1 for DSS.
double diagonal_ssm_scale(DiagonalSsmKind kind);

}  // namespace longseq
