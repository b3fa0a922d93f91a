#include "kernels/toeplitz.h"

#include <cmath>

#include "kernels/backends.h"
#include "kernels/tensor_checks.h"

namespace longseq {

namespace {

// Validates t (G, n_out + n_in - 1) and x (B, G, n_in, F), fp32 on one device; n_out comes from
// the output (y or grad_y).
ToeplitzShape checked_shape(const char* op, const Tensor& t, const Tensor& x, const Tensor& y) {
  LONGSEQ_CHECK(t.rank() == 2 && x.rank() == 4 && y.rank() == 4,
                "[{}] t must be (G, n_out + n_in - 1), x (B, G, n_in, F), y (B, G, n_out, F); got "
                "{}, {}, {}",
                op, t.describe(), x.describe(), y.describe());
  ToeplitzShape shape;
  shape.batch = x.size(0);
  shape.groups = x.size(1);
  shape.n_in = x.size(2);
  shape.columns = x.size(3);
  shape.n_out = y.size(2);
  LONGSEQ_CHECK(shape.n_in >= 1 && shape.n_out >= 1, "[{}] empty block: n_out = {}, n_in = {}", op,
                shape.n_out, shape.n_in);
  check_contiguous(op, "x", x);
  check_tensor(op, "t", t, {shape.groups, shape.offsets()}, x.dtype(), x.device());
  check_tensor(op, "y", y, {shape.batch, shape.groups, shape.n_out, shape.columns}, x.dtype(),
               x.device());
  LONGSEQ_REQUIRE(x.dtype() == DType::f32, "[{}] takes fp32 tensors, got {}", op,
                  dtype_name(x.dtype()));
  shape.fft_length = toeplitz_fft_length(shape.offsets());
  return shape;
}

bool has_only_factors_2_3_5(std::int64_t n) {
  for (const std::int64_t p : {2, 3, 5}) {
    while (n % p == 0) {
      n /= p;
    }
  }
  return n == 1;
}

double real_fft_flops(double length) { return 2.5 * length * std::log2(length); }

}  // namespace

void toeplitz_product(ComputeContext& context, const Tensor& t, const Tensor& x, const Tensor& y,
                      bool accumulate) {
  constexpr const char* kOp = "toeplitz_product";
  const ToeplitzShape shape = checked_shape(kOp, t, x, y);
  if (shape.batch * shape.groups * shape.columns == 0) {
    return;
  }
  const auto kernel = x.device() == Device::cpu ? cpu::toeplitz_product : cuda::toeplitz_product;
  kernel(context, shape, t, x, y, accumulate);
}

void toeplitz_product_backward(ComputeContext& context, const Tensor& t, const Tensor& x,
                               const Tensor& grad_y, const Tensor& grad_x, const Tensor& grad_t,
                               bool accumulate) {
  constexpr const char* kOp = "toeplitz_product_backward";
  const ToeplitzShape shape = checked_shape(kOp, t, x, grad_y);
  if (grad_x.defined()) {
    check_like(kOp, "grad_x", grad_x, x);
  }
  if (grad_t.defined()) {
    check_like(kOp, "grad_t", grad_t, t);
  }
  if (!grad_x.defined() && !grad_t.defined()) {
    return;
  }
  const auto kernel =
      x.device() == Device::cpu ? cpu::toeplitz_product_backward : cuda::toeplitz_product_backward;
  kernel(context, shape, t, x, grad_y, grad_x, grad_t, accumulate);
}

std::int64_t toeplitz_fft_length(std::int64_t offsets) {
  LONGSEQ_CHECK(offsets >= 1, "[toeplitz_fft_length] needs at least one offset, got {}", offsets);
  std::int64_t length = offsets + (offsets % 2);
  while (!has_only_factors_2_3_5(length)) {
    length += 2;
  }
  return length;
}

double toeplitz_product_flops(std::int64_t batch, std::int64_t groups, std::int64_t n_out,
                              std::int64_t n_in, std::int64_t columns) {
  const double length = static_cast<double>(toeplitz_fft_length(n_out + n_in - 1));
  const double product = 6.0 * (length / 2.0 + 1.0);
  const double per_column = 2.0 * real_fft_flops(length) + product;
  return static_cast<double>(batch * groups * columns) * per_column +
         static_cast<double>(groups) * real_fft_flops(length);
}

double toeplitz_product_backward_flops(std::int64_t batch, std::int64_t groups, std::int64_t n_out,
                                       std::int64_t n_in, std::int64_t columns) {
  const double length = static_cast<double>(toeplitz_fft_length(n_out + n_in - 1));
  const double product = 6.0 * (length / 2.0 + 1.0);
  const double per_column = 3.0 * real_fft_flops(length) + 2.0 * product;
  return static_cast<double>(batch * groups * columns) * per_column +
         static_cast<double>(groups) * 2.0 * real_fft_flops(length);
}

}  // namespace longseq
