// Complex arithmetic of the diagonal state-space kernels, shared by the CPU and CUDA
// implementations (kernels/diagonal_ssm.h, MECHANISMS.md section 10).
//
// The kernels need one thing beyond +, *: the power Abar^l = exp(l z) of a mode, z = dt Lambda,
// for positions l up to millions. It is computed directly, never by repeated multiplication
// (whose rounding errors grow with l): the magnitude exp(l Re z) from l Re z, and the phase
// l Im z formed in double and reduced to [-pi, pi] before the (float) sine and cosine, so that it
// stays exact to fp32 rounding however large l Im z grows.
#pragma once

#include <cmath>
#include <cstdint>

#include "runtime/host_device.h"

namespace longseq {

template <typename T>
struct SsmComplex {
  T re;
  T im;
};

template <typename T>
LONGSEQ_HOST_DEVICE SsmComplex<T> operator+(SsmComplex<T> a, SsmComplex<T> b) {
  return {a.re + b.re, a.im + b.im};
}

template <typename T>
LONGSEQ_HOST_DEVICE SsmComplex<T> operator*(SsmComplex<T> a, SsmComplex<T> b) {
  return {a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re};
}

template <typename T>
LONGSEQ_HOST_DEVICE SsmComplex<T> operator*(T scalar, SsmComplex<T> a) {
  return {scalar * a.re, scalar * a.im};
}

// Re(a b) without forming the imaginary part: the readout of a mode.
template <typename T>
LONGSEQ_HOST_DEVICE T real_of_product(SsmComplex<T> a, SsmComplex<T> b) {
  return a.re * b.re - a.im * b.im;
}

// The phase l * im reduced to [-pi, pi]: exact up to the final rounding to float.
LONGSEQ_HOST_DEVICE float reduced_phase(double l, double im) {
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  const double phase = l * im;
  return static_cast<float>(phase - kTwoPi * rint(phase / kTwoPi));
}

// exp(l z) for z = (re, im), in float.
LONGSEQ_HOST_DEVICE SsmComplex<float> mode_power(double l, double re, double im) {
  const float magnitude = expf(static_cast<float>(l * re));
  const float phase = reduced_phase(l, im);
  return {magnitude * cosf(phase), magnitude * sinf(phase)};
}

// exp(l z) in double (the per-block factors of the CPU kernels and the host algebra).
LONGSEQ_HOST_DEVICE SsmComplex<double> mode_power_f64(double l, double re, double im) {
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  double phase = l * im;
  phase -= kTwoPi * rint(phase / kTwoPi);
  const double magnitude = exp(l * re);
  return {magnitude * cos(phase), magnitude * sin(phase)};
}

}  // namespace longseq
