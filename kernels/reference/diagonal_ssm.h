// Plain-loop reference of the diagonal state-space layer (kernels/diagonal_ssm.h), in double: the
// recurrence itself, position by position, so it shares no code path with the Vandermonde and
// FFT kernels (the test "convolution = unrolled recurrence"). Takes CPU tensors of any floating
// dtype (fp64 ones for finite differences) and writes outputs in their own dtype.
#pragma once

#include "kernels/diagonal_ssm.h"
#include "runtime/tensor.h"

namespace longseq::reference {

// x_l = Abar x_{l-1} + Bbar u_l from x_{-1} = initial (undefined: 0);
// y_l = scale Re(sum_m C_m x_l,m) + D u_l; final = x_{L-1}. y or final may be undefined.
void diagonal_ssm_forward(DiagonalSsmKind kind, const DiagonalSsmParameters& parameters,
                          const Tensor& u, const Tensor& initial, const Tensor& y,
                          const Tensor& final);

// K (H, L): K_l = scale Re(sum_m C_m exp(l dt Lambda_m) Bbar_m).
void diagonal_ssm_kernel(DiagonalSsmKind kind, const DiagonalSsmParameters& parameters,
                         const Tensor& kernel);

}  // namespace longseq::reference
