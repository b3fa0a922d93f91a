// Toeplitz products by FFT: the core of relative-position kernelized attention (rpe_fft,
// MECHANISMS.md section 6) and of state-space convolutions (s4, s4d, dss, gss: a causal
// convolution y_l = sum_{j <= l} K_{l-j} u_j is the Toeplitz product with t_{-s} = K_s, t_s = 0
// for s > 0).
//
// A block of a Toeplitz matrix: rows i in [0, n_out), columns j in [0, n_in), entry t at offset
// j - i. The offsets range over -(n_out - 1) .. n_in - 1, so t has n_out + n_in - 1 entries and
// index (j - i) + (n_out - 1) holds t_{j - i}. A block of a larger Toeplitz matrix (a pair of
// sequence shards) is the product with the slice of the large t that covers its offsets.
//
//   y[b, g, i, f] = sum_j t[g, j - i + n_out - 1] x[b, g, j, f]
//
// Layouts (contiguous):
//   t   (G, n_out + n_in - 1)    one row per group (head or channel), shared across the batch
//   x   (B, G, n_in, F)
//   y   (B, G, n_out, F)
// Computed by circulant embedding: FFT length L >= n_out + n_in - 1 (toeplitz_fft_length), so
// nothing wraps around. With a[s] = t_{-s} (0 <= s < n_out), a[L - s] = t_s (0 < s < n_in) and 0
// elsewhere, y = IFFT(FFT(a) . FFT([x; 0]))[0, n_out); the transposed block is the same with
// conj(FFT(a)), and grad_t the correlation IFFT(sum_{b, f} conj(FFT(grad_y)) . FFT(x)).
// CPU: KISS FFT (fp32); CUDA: cuFFT. fp32 only; accumulation in the FFT's precision.
#pragma once

#include <cstdint>

#include "runtime/context.h"
#include "runtime/tensor.h"

namespace longseq {

// The geometry of one call, checked and resolved once by the dispatcher.
struct ToeplitzShape {
  std::int64_t batch = 0;    // B
  std::int64_t groups = 0;   // G
  std::int64_t n_out = 0;    // rows of the block
  std::int64_t n_in = 0;     // columns of the block
  std::int64_t columns = 0;  // F
  std::int64_t fft_length = 0;

  [[nodiscard]] std::int64_t offsets() const { return n_out + n_in - 1; }
};

// accumulate: add into y instead of overwriting it.
void toeplitz_product(ComputeContext& context, const Tensor& t, const Tensor& x, const Tensor& y,
                      bool accumulate = false);

// Backward of toeplitz_product with the same t and x, given dL/dy:
//   grad_x[b, g, j, f] = sum_i t[g, j - i + n_out - 1] grad_y[b, g, i, f]    (the transposed block)
//   grad_t[g, o + n_out - 1] = sum_{b, f} sum_{j - i = o} grad_y[b, g, i, f] x[b, g, j, f]
// Either gradient may be undefined (not wanted); accumulate adds into them.
void toeplitz_product_backward(ComputeContext& context, const Tensor& t, const Tensor& x,
                               const Tensor& grad_y, const Tensor& grad_x, const Tensor& grad_t,
                               bool accumulate = false);

// The FFT length used for n_out + n_in - 1 offsets: the smallest even 2^a 3^b 5^c >= offsets
// (even because the real transforms take even lengths).
std::int64_t toeplitz_fft_length(std::int64_t offsets);

// FLOPs by the convention of the FFT algorithm: 5 L log2 L per complex FFT of length L (a real
// FFT counts half), per (b, g, f) column: forward and inverse of x's column plus the pointwise
// product (6 per complex entry); the transform of t once per g.
double toeplitz_product_flops(std::int64_t batch, std::int64_t groups, std::int64_t n_out,
                              std::int64_t n_in, std::int64_t columns);
// The backward with both gradients: per column the transforms of grad_y and x, the inverse for
// grad_x and two pointwise products; per g the transform of t and the inverse for grad_t.
double toeplitz_product_backward_flops(std::int64_t batch, std::int64_t groups, std::int64_t n_out,
                                       std::int64_t n_in, std::int64_t columns);

namespace reference {

// Direct O(n_out n_in) double loops, accumulating in double; CPU tensors of any floating dtype
// (fp64 tensors give an fp64 reference). Same contract as the operations above.
void toeplitz_product(const Tensor& t, const Tensor& x, const Tensor& y, bool accumulate = false);
void toeplitz_product_backward(const Tensor& t, const Tensor& x, const Tensor& grad_y,
                               const Tensor& grad_x, const Tensor& grad_t, bool accumulate = false);

}  // namespace reference

}  // namespace longseq
