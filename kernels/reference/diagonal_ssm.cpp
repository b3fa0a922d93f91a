// Reference diagonal state-space layer by its recurrence, in double
// (kernels/reference/diagonal_ssm.h).
#include "kernels/reference/diagonal_ssm.h"

#include <complex>
#include <cstdint>
#include <vector>

#include "kernels/reference/values.h"

namespace longseq::reference {

namespace {

using Complex = std::complex<double>;

std::vector<Complex> complex_of(const char* op, const Tensor& tensor) {
  const std::vector<double> flat = values_of(op, tensor);
  std::vector<Complex> values(flat.size() / 2);
  for (std::size_t i = 0; i < values.size(); ++i) {
    values[i] = {flat[2 * i], flat[2 * i + 1]};
  }
  return values;
}

void store_complex(const char* op, const Tensor& destination, const std::vector<Complex>& values) {
  std::vector<double> flat;
  for (const Complex& value : values) {
    flat.push_back(value.real());
    flat.push_back(value.imag());
  }
  store(op, destination, flat);
}

// Per (h, m): z = dt Lambda, Abar, Bbar, C; D per h.
struct Discretised {
  std::int64_t channels = 0;
  std::int64_t modes = 0;
  double scale = 1.0;
  std::vector<Complex> z, abar, bbar, c;
  std::vector<double> d;
};

Discretised discretised(const char* op, DiagonalSsmKind kind, const DiagonalSsmParameters& p) {
  Discretised s;
  s.channels = p.b.size(0);
  s.modes = p.b.size(1);
  s.scale = diagonal_ssm_scale(kind);
  const std::vector<double> log_dt = values_of(op, p.log_dt);
  const std::vector<Complex> lambda = complex_of(op, p.lambda);
  const std::vector<Complex> b = complex_of(op, p.b);
  s.c = complex_of(op, p.c);
  s.d = values_of(op, p.d);
  const bool shared = p.lambda.size(0) == 1;
  for (std::int64_t h = 0; h < s.channels; ++h) {
    for (std::int64_t m = 0; m < s.modes; ++m) {
      const Complex l = lambda[shared ? m : h * s.modes + m];
      const Complex z = std::exp(log_dt[h]) * l;
      s.z.push_back(z);
      s.abar.push_back(std::exp(z));
      s.bbar.push_back((std::exp(z) - 1.0) / l * b[h * s.modes + m]);
    }
  }
  return s;
}

}  // namespace

void diagonal_ssm_forward(DiagonalSsmKind kind, const DiagonalSsmParameters& parameters,
                          const Tensor& u, const Tensor& initial, const Tensor& y,
                          const Tensor& final) {
  constexpr const char* kOp = "reference::diagonal_ssm_forward";
  const Discretised s = discretised(kOp, kind, parameters);
  const std::int64_t batch = u.size(0);
  const std::int64_t length = u.size(2);
  check_shape(kOp, "u", u, {batch, s.channels, length});
  const std::vector<double> input = values_of(kOp, u);
  const std::size_t states = s.z.size();
  std::vector<Complex> x =
      initial.defined() ? complex_of(kOp, initial) : std::vector<Complex>(batch * states);
  std::vector<double> out(input.size(), 0.0);
  for (std::int64_t b = 0; b < batch; ++b) {
    for (std::int64_t h = 0; h < s.channels; ++h) {
      const std::int64_t row = (b * s.channels + h) * length;
      for (std::int64_t l = 0; l < length; ++l) {
        Complex sum = 0.0;
        for (std::int64_t m = 0; m < s.modes; ++m) {
          const std::size_t i = static_cast<std::size_t>(h * s.modes + m);
          Complex& xm = x[b * states + i];
          xm = s.abar[i] * xm + s.bbar[i] * input[row + l];
          sum += s.c[i] * xm;
        }
        out[row + l] = s.scale * sum.real() + s.d[h] * input[row + l];
      }
    }
  }
  if (y.defined()) {
    store(kOp, y, out);
  }
  if (final.defined()) {
    store_complex(kOp, final, x);
  }
}

void diagonal_ssm_kernel(DiagonalSsmKind kind, const DiagonalSsmParameters& parameters,
                         const Tensor& kernel) {
  constexpr const char* kOp = "reference::diagonal_ssm_kernel";
  const Discretised s = discretised(kOp, kind, parameters);
  const std::int64_t length = kernel.size(1);
  std::vector<double> values(static_cast<std::size_t>(s.channels * length));
  for (std::int64_t h = 0; h < s.channels; ++h) {
    for (std::int64_t l = 0; l < length; ++l) {
      Complex sum = 0.0;
      for (std::int64_t m = 0; m < s.modes; ++m) {
        const std::size_t i = static_cast<std::size_t>(h * s.modes + m);
        sum += s.c[i] * std::exp(static_cast<double>(l) * s.z[i]) * s.bbar[i];
      }
      values[h * length + l] = s.scale * sum.real();
    }
  }
  store(kOp, kernel, values);
}

}  // namespace longseq::reference
