// Index math of the circulant embedding (kernels/toeplitz.h), shared by the CPU and CUDA kernels.
// With FFT length L >= n_out + n_in - 1, offset o = j - i in [-(n_out - 1), n_in - 1]:
//   kernel a      a[(-o) mod L] = t_o, so that y_i = sum_j a[(i - j) mod L] x_j (a circular
//                 convolution, no wrap-around)
//   correlation   c[m] = sum_i grad_y_i x_{(i + m) mod L} holds offset o at m = o mod L
#pragma once

#include "runtime/host_device.h"

namespace longseq {

// Index of offset o in the embedded kernel a (length L).
LONGSEQ_HOST_DEVICE long long circulant_kernel_index(long long offset, long long length) {
  return offset <= 0 ? -offset : length - offset;
}

// Index of offset o in the correlation c (length L).
LONGSEQ_HOST_DEVICE long long correlation_index(long long offset, long long length) {
  return offset >= 0 ? offset : length + offset;
}

// Offset o of entry e of t (e = o + n_out - 1).
LONGSEQ_HOST_DEVICE long long toeplitz_offset(long long entry, long long n_out) {
  return entry - (n_out - 1);
}

// A (b, g, f) column of x or y, from its index c = (b G + g) F + f.
struct ToeplitzColumn {
  long long bg;  // b G + g: the (rows, F) matrix the column lives in
  long long g;
  long long f;
};

LONGSEQ_HOST_DEVICE ToeplitzColumn toeplitz_column(long long column, long long groups,
                                                   long long columns) {
  const long long bg = column / columns;
  return {bg, bg % groups, column % columns};
}

}  // namespace longseq
