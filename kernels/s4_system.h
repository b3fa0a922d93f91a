// One channel of an S4 layer (kernels/s4.h) in double on the host: the bilinear discretisation
// applied with the DPLR structure (O(M) per step, no N x N inverse), its dense real form where a
// power or a gradient needs it, the backward of the recurrence, and the chain from the gradients
// of (Abar, Bbar, C) to those of the learned parameters.
//
// Real representation: the complex state x (M modes) is the real vector [Re x; Im x] (N = 2M);
// the maps are real-linear, so a real-representation vector is held as M complex numbers and a
// matrix as (N, N) row-major doubles. The readout y = 2 Re(C x) = c_real . x with
// c_real = [2 Re C; -2 Im C], held as the complex vector 2 conj(C).
#pragma once

#include <complex>
#include <cstdint>
#include <vector>

#include "kernels/s4.h"

namespace longseq {

using S4Value = std::complex<double>;

// The continuous parameters of channel h, read from fp32 or fp64 CPU tensors.
struct S4Channel {
  std::int64_t modes = 0;
  double dt = 0.0;
  double d = 0.0;
  std::vector<S4Value> lambda, p, b, c;
};
S4Channel s4_channel(const S4Parameters& parameters, std::int64_t h);

// dL/d (Abar, Bbar, c_real, D) of one channel, accumulated over positions and batch rows.
struct S4ChannelGradient {
  explicit S4ChannelGradient(std::int64_t modes)
      : abar(static_cast<std::size_t>(4 * modes * modes)),
        bbar(static_cast<std::size_t>(modes)),
        c(static_cast<std::size_t>(modes)) {}
  std::vector<double> abar;   // (N, N)
  std::vector<S4Value> bbar;  // real representation
  std::vector<S4Value> c;     // real representation of dL/d c_real
  double d = 0.0;
};

class S4Discrete {
 public:
  explicit S4Discrete(S4Channel channel);

  [[nodiscard]] const S4Channel& channel() const { return channel_; }
  [[nodiscard]] std::int64_t modes() const { return channel_.modes; }
  [[nodiscard]] const std::vector<S4Value>& bbar() const { return bbar_; }

  // x <- Abar x and x <- Abar^T x (M values).
  void step(S4Value* x) const;
  void adjoint_step(S4Value* x) const;
  // 2 Re(C x).
  [[nodiscard]] double readout(const S4Value* x) const;
  // Abar and A as (N, N) real matrices.
  [[nodiscard]] std::vector<double> dense_abar() const;
  [[nodiscard]] std::vector<double> dense_a() const;
  // C~ = C (I - Abar^length), as M complex values.
  [[nodiscard]] std::vector<S4Value> truncated_c(std::int64_t length) const;

  // Backward of one row of the recurrence x_l = Abar x_{l-1} + Bbar u_l (x_{-1} = initial),
  // y_l = 2 Re(C x_l) + D u_l, given grad_y and the gradient of the final state: writes grad_u
  // and grad_initial and accumulates into `gradient`. initial / grad_final / grad_initial may be
  // null (zero / zero / not wanted). u, grad_y, grad_u have `length` entries.
  void backward_row(std::int64_t length, const double* u, const S4Value* initial,
                    const double* grad_y, const S4Value* grad_final, double* grad_u,
                    S4Value* grad_initial, S4ChannelGradient& gradient) const;

  // grad (fp32 tensors of kernels/s4.h) [h] += the parameter gradients implied by `gradient`.
  void add_parameter_gradients(const S4ChannelGradient& gradient, const S4Parameters& grad,
                               std::int64_t h) const;

 private:
  // x <- (I + dt/2 A) x; x <- (I - dt/2 A)^-1 x; with conj(Lambda) for the transposed maps.
  void multiply_forward_half(S4Value* x, bool transposed) const;
  void solve_backward_half(S4Value* x, bool transposed) const;

  S4Channel channel_;
  std::vector<S4Value> bbar_;
};

// Validates the shapes of S4 parameters (fp32 or fp64, all on `device`).
void check_s4_parameters(const char* op, const S4Parameters& parameters, Device device);

// a^exponent for a (n, n) row-major matrix, by repeated squaring.
std::vector<double> s4_matrix_power(const std::vector<double>& a, std::int64_t n,
                                    std::int64_t exponent);

}  // namespace longseq
