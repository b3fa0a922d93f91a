// S4 math shared by the CPU, CUDA and reference implementations (kernels/s4.h, MECHANISMS.md
// section 10): the truncated generating function of the bilinear-discretised DPLR system at one
// point z of the unit circle, by Cauchy sums with the rank-1 Woodbury correction.
//
// With A = Lambda - p p^* over the full state (each kept mode m and its conjugate partner),
// Abar = (I - dt/2 A)^-1 (I + dt/2 A) and Bbar = dt (I - dt/2 A)^-1 B:
//   sum_l C~ Abar^l Bbar z^l = C~ (I - z Abar)^-1 Bbar = 2 C~ (alpha - s A)^-1 B,
//   alpha = (2 / dt)(1 - z),  s = 1 + z,
//   (alpha - s A)^-1 = R - s R p p^* R / (1 + s p^* R p),  R = diag(1 / (alpha - s lambda_n)),
// so the value is 2 (k00 - s k01 k10 / (1 + s k11)) with the Cauchy sums
//   k00 = sum_n c~_n b_n r_n,  k01 = sum_n c~_n p_n r_n,  k10 = sum_n conj(p_n) b_n r_n,
//   k11 = sum_n conj(p_n) p_n r_n
// over the full modes (m and its conjugate). The form (alpha - s A) keeps z = -1 regular (s = 0).
#pragma once

#include "runtime/host_device.h"

namespace longseq {

template <typename T>
struct S4Complex {
  T re;
  T im;
};

template <typename T>
LONGSEQ_HOST_DEVICE S4Complex<T> s4_add(S4Complex<T> a, S4Complex<T> b) {
  return {a.re + b.re, a.im + b.im};
}
template <typename T>
LONGSEQ_HOST_DEVICE S4Complex<T> s4_mul(S4Complex<T> a, S4Complex<T> b) {
  return {a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re};
}
template <typename T>
LONGSEQ_HOST_DEVICE S4Complex<T> s4_conj(S4Complex<T> a) {
  return {a.re, -a.im};
}
template <typename T>
LONGSEQ_HOST_DEVICE S4Complex<T> s4_inverse(S4Complex<T> a) {
  const T norm = a.re * a.re + a.im * a.im;
  return {a.re / norm, -a.im / norm};
}

// The four Cauchy sums of one point.
template <typename T>
struct S4CauchySums {
  S4Complex<T> k00{0, 0}, k01{0, 0}, k10{0, 0}, k11{0, 0};

  // Adds the term of one full mode with r = 1 / (alpha - s lambda).
  LONGSEQ_HOST_DEVICE void add(S4Complex<T> c, S4Complex<T> b, S4Complex<T> p, S4Complex<T> r) {
    const S4Complex<T> cr = s4_mul(c, r);
    const S4Complex<T> pr = s4_mul(s4_conj(p), r);
    k00 = s4_add(k00, s4_mul(cr, b));
    k01 = s4_add(k01, s4_mul(cr, p));
    k10 = s4_add(k10, s4_mul(pr, b));
    k11 = s4_add(k11, s4_mul(pr, p));
  }
};

// The generating function at z = (z_re, z_im) from M kept modes; lambda, p, b, c_tilde hold M
// complex numbers each as (re, im) pairs (c_tilde = C (I - Abar^L), see kernels/s4.h).
template <typename T, typename Load>
LONGSEQ_HOST_DEVICE S4Complex<T> s4_generating_function(S4Complex<T> z, T dt, long long modes,
                                                        const Load& load) {
  const S4Complex<T> alpha{(T(2) / dt) * (T(1) - z.re), -(T(2) / dt) * z.im};
  const S4Complex<T> s{T(1) + z.re, z.im};
  S4CauchySums<T> sums;
  for (long long m = 0; m < modes; ++m) {
    S4Complex<T> lambda, p, b, c;
    load(m, lambda, p, b, c);
    const S4Complex<T> sl = s4_mul(s, lambda);
    sums.add(c, b, p, s4_inverse(S4Complex<T>{alpha.re - sl.re, alpha.im - sl.im}));
    const S4Complex<T> slc = s4_mul(s, s4_conj(lambda));
    sums.add(s4_conj(c), s4_conj(b), s4_conj(p),
             s4_inverse(S4Complex<T>{alpha.re - slc.re, alpha.im - slc.im}));
  }
  const S4Complex<T> s_k11 = s4_mul(s, sums.k11);
  const S4Complex<T> correction = s4_mul(s4_mul(s, s4_mul(sums.k01, sums.k10)),
                                         s4_inverse(S4Complex<T>{T(1) + s_k11.re, s_k11.im}));
  return {T(2) * (sums.k00.re - correction.re), T(2) * (sums.k00.im - correction.im)};
}

}  // namespace longseq
