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

// ---- the layer on a sequence
//
// Layouts (contiguous, fp32, all on one device, the parameters too):
//   u, y          (B, H, L)       H channels, L positions
//   states        (B, H, M, 2)    complex x per batch row, channel and mode
// The convolution runs through toeplitz_product (kernels/toeplitz.h) with t of length 2n - 1:
// t[n - 1 - s] = K_s + D [s = 0] (the direct term D u is K's value at lag 0), t = 0 at j > i,
// on pieces of n <= piece_length positions, each starting from the state the piece before it
// ends in (the handoff above). Fixed pieces make the cost linear in L: one FFT of the whole
// sequence grows as L log L, and on the CPU its working set leaves the cache at a few hundred
// thousand points. The backward recomputes the states at the piece boundaries and runs the
// pieces in reverse, handing the initial-state gradient of a piece to the one before it.
inline constexpr std::int64_t kDiagonalSsmPiece = 16384;

// y = K * u + D u (+ the correction of `initial`); final = Abar^L initial + x_local.
//   initial  (B, H, M, 2) or undefined: the zero state
//   y        may be undefined: only `final` is computed (the summary of a piece)
//   final    may be undefined: not wanted
void diagonal_ssm_forward(ComputeContext& context, DiagonalSsmKind kind,
                          const DiagonalSsmParameters& parameters, const Tensor& u,
                          const Tensor& initial, const Tensor& y, const Tensor& final,
                          std::int64_t piece_length = kDiagonalSsmPiece);

// Backward of diagonal_ssm_forward with the same parameters, u and initial state. Complex
// gradients are stored as (dL/d re, dL/d im).
//   grad_y           dL/dy (B, H, L), or undefined: zero
//   grad_final       dL/d final (B, H, M, 2), or undefined: zero
//   grad_u           overwritten, or undefined: not wanted
//   grad_parameters  shapes of `parameters`: the gradients are ADDED into them (pieces of one
//                    sequence sum into one set), or undefined tensors: not wanted
//   grad_initial     dL/d initial (B, H, M, 2), overwritten, or undefined: not wanted
void diagonal_ssm_backward(ComputeContext& context, DiagonalSsmKind kind,
                           const DiagonalSsmParameters& parameters, const Tensor& u,
                           const Tensor& grad_y, const Tensor& initial, const Tensor& grad_final,
                           const Tensor& grad_u, const DiagonalSsmParameters& grad_parameters,
                           const Tensor& grad_initial,
                           std::int64_t piece_length = kDiagonalSsmPiece);

// The convolution kernel K (H, L) alone: K_s = scale Re(sum_m C_m Abar_m^s Bbar_m) (no D).
void diagonal_ssm_kernel(ComputeContext& context, DiagonalSsmKind kind,
                         const DiagonalSsmParameters& parameters, const Tensor& kernel);
// Its backward: dL/d parameters from dL/dK (H, L), ADDED into grad_parameters (d untouched).
void diagonal_ssm_kernel_backward(ComputeContext& context, DiagonalSsmKind kind,
                                  const DiagonalSsmParameters& parameters,
                                  const Tensor& grad_kernel,
                                  const DiagonalSsmParameters& grad_parameters);

// Abar^length per (h, m): the decay of a piece of that length, (H, M, 2) fp32 on the CPU (the
// multiplier of the affine handoff; the scan of parallel/diagonal_ssm_parallel.h composes them).
Tensor diagonal_ssm_decay(const DiagonalSsmParameters& parameters, std::int64_t length);

// One step of generation: x = Abar x + Bbar u, then y = scale Re(sum_m C_m x_m) + D u.
//   u, y (B, H); state (B, H, M, 2) updated in place. Computed on the host (a few H M numbers) and
//   copied back for CUDA tensors.
void diagonal_ssm_step(ComputeContext& context, DiagonalSsmKind kind,
                       const DiagonalSsmParameters& parameters, const Tensor& u,
                       const Tensor& state, const Tensor& y);

// Positions per block of the Vandermonde products: Abar^l = Abar^(l0) Abar^t with l = l0 + t,
// both powers computed directly as exp(l dt Lambda) (never by repeated multiplication), so that
// the products over a block are matrix products (kernels/cpu/diagonal_ssm.cpp).
inline constexpr std::int64_t kDiagonalSsmBlock = 64;

// FLOP conventions, per piece of n positions, with B batch rows, H channels, M modes (a complex
// multiply-add counts 8):
//   forward   toeplitz_product_flops(B, H, n, n, 1) + 8 n M H (kernel generation)
//             + 8 B H n M each for the correction of an initial state and for the final state
//   backward  toeplitz backward (twice the forward's transforms) + 16 n M H (the two sums of dK)
//             + 16 B H n M for each of the correction and the final state
// summed over the pieces of the call, where every piece but the first has an initial state and
// every piece but the last a final one; the backward adds 8 B H n M for recomputing the final
// state of every piece but the last.
double diagonal_ssm_forward_flops(std::int64_t batch, std::int64_t channels, std::int64_t length,
                                  std::int64_t modes, bool with_initial, bool with_final,
                                  std::int64_t piece_length = kDiagonalSsmPiece);
double diagonal_ssm_backward_flops(std::int64_t batch, std::int64_t channels, std::int64_t length,
                                   std::int64_t modes, bool with_initial, bool with_final,
                                   std::int64_t piece_length = kDiagonalSsmPiece);

}  // namespace longseq
