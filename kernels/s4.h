// S4: the state-space layer with a diagonal-plus-low-rank (DPLR) state matrix (Gu et al.;
// MECHANISMS.md section 10).
//
// Per channel h (H channels), a real state of size N = 2M kept as M complex modes (each standing
// for a conjugate pair), A = Lambda - p p^* over the full state, bilinear discretisation with
// dt = exp(log_dt[h]):
//   Abar = (I - dt/2 A)^-1 (I + dt/2 A),  Bbar = dt (I - dt/2 A)^-1 B
//   x_l  = Abar x_{l-1} + Bbar u_l,   y_l = 2 Re(C x_l) + D u_l
//   K_l  = 2 Re(C Abar^l Bbar)        (y = K * u + D u, a causal convolution)
// The kernel of length L comes from the generating function at the L-th roots of unity (Cauchy
// sums with a rank-1 Woodbury correction, kernels/common/s4_math.h) and an inverse FFT; the
// truncation to L terms is exact through C~ = C (I - Abar^L). Complex numbers are stored as a
// trailing dimension of 2 (re, im), fp32.
//
// The complex state x (M modes) acts real-linearly (the low-rank term couples a mode with its
// conjugate): in the real representation [Re x; Im x] (N reals) every map here is an N x N real
// matrix. States are (B, H, M, 2) fp32.
//
// Handoff between consecutive pieces of a sequence: a piece of length L that starts from x_in
// adds y_l += 2 Re(C Abar^(l+1) x_in) to its outputs and ends in x_out = Abar^L x_in + x_local
// (x_local: its final state from zero), an affine map (parallel/s4_parallel.h).
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/context.h"
#include "runtime/tensor.h"

namespace longseq {

struct S4Parameters {
  Tensor log_dt;  // (H)
  Tensor lambda;  // (H, M, 2), real parts < 0
  Tensor p;       // (H, M, 2)
  Tensor b;       // (H, M, 2)
  Tensor c;       // (H, M, 2)
  Tensor d;       // (H)

  [[nodiscard]] std::vector<Tensor> list() const { return {log_dt, lambda, p, b, c, d}; }
  [[nodiscard]] std::int64_t channels() const { return log_dt.size(0); }
  [[nodiscard]] std::int64_t modes() const { return lambda.size(1); }
};

// HiPPO-LegS of size N in its normal-plus-low-rank form, row-major doubles:
//   A_nk = -sqrt(2n+1) sqrt(2k+1) (n > k), -(n+1) (n = k), 0 (n < k);  P_n = sqrt(n + 1/2);
//   B_n = sqrt(2n+1);  S = A + P P^T is -I/2 plus a skew-symmetric matrix.
struct HippoLegs {
  std::int64_t size = 0;
  std::vector<double> a;  // (N, N)
  std::vector<double> p;  // (N)
  std::vector<double> b;  // (N)
};
HippoLegs hippo_legs(std::int64_t size);

// The S4 initialisation, fp32 on the CPU, identical on every rank and device: the normal part S
// of HiPPO-LegS (state_size N, even) diagonalised once in double (S = V Lambda V^*), the M = N/2
// modes with Im(Lambda) > 0 kept, p = V^* P and b = V^* B in that basis (the same for every
// channel); C complex with N(0, 1/2) real and imaginary parts, log dt uniform in
// [log 1e-3, log 1e-1], D ~ N(0, 1), all drawn from Philox streams of `seed`.
S4Parameters make_s4_parameters(std::int64_t channels, std::int64_t state_size, std::uint64_t seed);
// Zero tensors of the same shapes and dtype (for gradients).
S4Parameters zeros_like(const S4Parameters& parameters);

// kernel (H, L) fp32 on the parameters' device: K_l for l < L (L >= 1).
void s4_kernel(ComputeContext& context, const S4Parameters& parameters, const Tensor& kernel);

// grad_parameters += dL/d parameters for dL/d kernel = grad_kernel (H, L) (D unchanged). CPU.
void s4_kernel_backward(ComputeContext& context, const S4Parameters& parameters,
                        const Tensor& grad_kernel, const S4Parameters& grad_parameters);

// One piece of a sequence (convolution mode) on the CPU, fp32:
//   u, y        (B, H, L)
//   initial     (B, H, M, 2) the incoming state x_in; undefined: zero
//   final       (B, H, M, 2) receives x_out; undefined: not wanted
// y = K * u + D u (+ the response of x_in). The convolution runs through toeplitz_product (FFT
// length >= 2L - 1, nothing wraps); the state terms through the recurrence.
void s4_forward(ComputeContext& context, const S4Parameters& parameters, const Tensor& u,
                const Tensor& initial, const Tensor& y, const Tensor& final);

// Backward of s4_forward (through the recurrence, states rebuilt, not stored):
//   grad_final      (B, H, M, 2) dL/d x_out; undefined: zero
//   grad_u          (B, H, L) overwritten
//   grad_initial    (B, H, M, 2) dL/d x_in, overwritten; undefined: not wanted
//   grad_parameters accumulated (+=), every parameter including D
void s4_backward(ComputeContext& context, const S4Parameters& parameters, const Tensor& u,
                 const Tensor& initial, const Tensor& grad_y, const Tensor& grad_final,
                 const Tensor& grad_u, const Tensor& grad_initial,
                 const S4Parameters& grad_parameters);

// Recurrent mode (generation): for every position, x = Abar x + Bbar u_l, y_l = 2 Re(C x) + D u_l;
// state (B, H, M, 2) is updated in place. CPU.
void s4_recurrence(ComputeContext& context, const S4Parameters& parameters, const Tensor& u,
                   const Tensor& state, const Tensor& y);

// x <- Abar^length x for states (B, H, M, 2) (transposed: x <- (Abar^T)^length x, the adjoint
// for gradients). CPU.
void s4_transition(ComputeContext& context, const S4Parameters& parameters, std::int64_t length,
                   bool transposed, const Tensor& state);

// FLOPs, per (batch, channel) over L positions with M modes:
//   kernel      once per channel: 2 (L/2 + 1) M Cauchy terms of ~40 real flops each, plus one
//               inverse real FFT (2.5 L log2 L)
//   forward     the Toeplitz product (kernels/toeplitz.h) plus 2 L for D u
//   backward    the recurrence and its adjoint with the DPLR step (~24 M flops per step and
//               direction) plus the rank-1 gradient of Abar (4 (2M)^2 per step)
double s4_kernel_flops(std::int64_t channels, std::int64_t length, std::int64_t modes);
double s4_forward_flops(std::int64_t batch, std::int64_t channels, std::int64_t length,
                        std::int64_t modes);
double s4_backward_flops(std::int64_t batch, std::int64_t channels, std::int64_t length,
                         std::int64_t modes);

}  // namespace longseq
