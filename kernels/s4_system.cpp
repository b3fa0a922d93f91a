#include "kernels/s4_system.h"

#include <cmath>
#include <utility>

#include "runtime/error.h"

namespace longseq {

namespace {

double value_at(const Tensor& tensor, std::int64_t index) {
  return tensor.dtype() == DType::f64 ? tensor.data<double>()[index]
                                      : static_cast<double>(tensor.data<float>()[index]);
}

void add_at(const Tensor& tensor, std::int64_t index, double value) {
  if (tensor.dtype() == DType::f64) {
    tensor.data<double>()[index] += value;
  } else {
    tensor.data<float>()[index] += static_cast<float>(value);
  }
}

S4Value complex_at(const Tensor& tensor, std::int64_t index) {
  return {value_at(tensor, 2 * index), value_at(tensor, 2 * index + 1)};
}

// Entry i of a real-representation vector held as M complex values.
double real_entry(const S4Value* x, std::int64_t modes, std::int64_t i) {
  return i < modes ? x[i].real() : x[i - modes].imag();
}

}  // namespace

S4Channel s4_channel(const S4Parameters& parameters, std::int64_t h) {
  S4Channel channel;
  channel.modes = parameters.modes();
  channel.dt = std::exp(value_at(parameters.log_dt, h));
  channel.d = value_at(parameters.d, h);
  for (std::int64_t m = 0; m < channel.modes; ++m) {
    const std::int64_t at = h * channel.modes + m;
    channel.lambda.push_back(complex_at(parameters.lambda, at));
    channel.p.push_back(complex_at(parameters.p, at));
    channel.b.push_back(complex_at(parameters.b, at));
    channel.c.push_back(complex_at(parameters.c, at));
  }
  return channel;
}

S4Discrete::S4Discrete(S4Channel channel) : channel_(std::move(channel)), bbar_(channel_.b) {
  solve_backward_half(bbar_.data(), false);
  for (S4Value& value : bbar_) {
    value *= channel_.dt;
  }
}

// (I + dt/2 A) x = x + dt/2 (Lambda x - 2 p Re(p^H x)).
void S4Discrete::multiply_forward_half(S4Value* x, bool transposed) const {
  const double half = channel_.dt / 2.0;
  double projection = 0.0;
  for (std::int64_t m = 0; m < modes(); ++m) {
    projection += (std::conj(channel_.p[m]) * x[m]).real();
  }
  for (std::int64_t m = 0; m < modes(); ++m) {
    const S4Value lambda = transposed ? std::conj(channel_.lambda[m]) : channel_.lambda[m];
    x[m] += half * (lambda * x[m] - 2.0 * channel_.p[m] * projection);
  }
}

// (I - dt/2 A) x = y is (1 - dt/2 lambda) x + dt p rho = y with rho = Re(p^H x): with
// E = 1 / (1 - dt/2 lambda), x = E (y - dt p rho) and rho = Re(p^H E y) / (1 + dt Re(p^H E p)).
void S4Discrete::solve_backward_half(S4Value* x, bool transposed) const {
  const double dt = channel_.dt;
  double numerator = 0.0;
  double denominator = 1.0;
  for (std::int64_t m = 0; m < modes(); ++m) {
    const S4Value lambda = transposed ? std::conj(channel_.lambda[m]) : channel_.lambda[m];
    const S4Value e = 1.0 / (1.0 - dt / 2.0 * lambda);
    numerator += (std::conj(channel_.p[m]) * e * x[m]).real();
    denominator += dt * (std::conj(channel_.p[m]) * e * channel_.p[m]).real();
  }
  const double rho = numerator / denominator;
  for (std::int64_t m = 0; m < modes(); ++m) {
    const S4Value lambda = transposed ? std::conj(channel_.lambda[m]) : channel_.lambda[m];
    x[m] = (x[m] - dt * channel_.p[m] * rho) / (1.0 - dt / 2.0 * lambda);
  }
}

void S4Discrete::step(S4Value* x) const {
  multiply_forward_half(x, false);
  solve_backward_half(x, false);
}

void S4Discrete::adjoint_step(S4Value* x) const {
  solve_backward_half(x, true);
  multiply_forward_half(x, true);
}

double S4Discrete::readout(const S4Value* x) const {
  double sum = 0.0;
  for (std::int64_t m = 0; m < modes(); ++m) {
    sum += (channel_.c[m] * x[m]).real();
  }
  return 2.0 * sum;
}

std::vector<double> S4Discrete::dense_abar() const {
  const std::int64_t n = 2 * modes();
  std::vector<double> abar(static_cast<std::size_t>(n * n));
  std::vector<S4Value> column(static_cast<std::size_t>(modes()));
  for (std::int64_t j = 0; j < n; ++j) {
    std::fill(column.begin(), column.end(), S4Value{});
    column[j % modes()] = j < modes() ? S4Value{1.0, 0.0} : S4Value{0.0, 1.0};
    step(column.data());
    for (std::int64_t i = 0; i < n; ++i) {
      abar[i * n + j] = real_entry(column.data(), modes(), i);
    }
  }
  return abar;
}

std::vector<double> S4Discrete::dense_a() const {
  const std::int64_t m_count = modes();
  const std::int64_t n = 2 * m_count;
  std::vector<double> a(static_cast<std::size_t>(n * n));
  for (std::int64_t m = 0; m < m_count; ++m) {
    a[m * n + m] = channel_.lambda[m].real();
    a[(m_count + m) * n + m_count + m] = channel_.lambda[m].real();
    a[m * n + m_count + m] = -channel_.lambda[m].imag();
    a[(m_count + m) * n + m] = channel_.lambda[m].imag();
  }
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j < n; ++j) {
      a[i * n + j] -= 2.0 * real_entry(channel_.p.data(), m_count, i) *
                      real_entry(channel_.p.data(), m_count, j);
    }
  }
  return a;
}

std::vector<S4Value> S4Discrete::truncated_c(std::int64_t length) const {
  const std::int64_t m_count = modes();
  const std::int64_t n = 2 * m_count;
  const std::vector<double> power = s4_matrix_power(dense_abar(), n, length);
  std::vector<double> c_real(static_cast<std::size_t>(n));
  for (std::int64_t m = 0; m < m_count; ++m) {
    c_real[m] = 2.0 * channel_.c[m].real();
    c_real[m_count + m] = -2.0 * channel_.c[m].imag();
  }
  std::vector<S4Value> c_tilde(static_cast<std::size_t>(m_count));
  for (std::int64_t m = 0; m < m_count; ++m) {
    double re = c_real[m];
    double im = c_real[m_count + m];
    for (std::int64_t i = 0; i < n; ++i) {
      re -= power[i * n + m] * c_real[i];
      im -= power[i * n + m_count + m] * c_real[i];
    }
    c_tilde[m] = {re / 2.0, -im / 2.0};
  }
  return c_tilde;
}

void S4Discrete::backward_row(std::int64_t length, const double* u, const S4Value* initial,
                              const double* grad_y, const S4Value* grad_final, double* grad_u,
                              S4Value* grad_initial, S4ChannelGradient& gradient) const {
  const std::int64_t m_count = modes();
  const std::int64_t n = 2 * m_count;
  // states[l + 1] = x_l for l = -1 .. L-1.
  std::vector<S4Value> states(static_cast<std::size_t>((length + 1) * m_count));
  if (initial != nullptr) {
    std::copy(initial, initial + m_count, states.begin());
  }
  for (std::int64_t l = 0; l < length; ++l) {
    S4Value* x = states.data() + (l + 1) * m_count;
    std::copy(x - m_count, x, x);
    step(x);
    for (std::int64_t m = 0; m < m_count; ++m) {
      x[m] += bbar_[m] * u[l];
    }
  }
  // The adjoint a_l = dL/d x_l, from the end.
  std::vector<S4Value> adjoint(static_cast<std::size_t>(m_count));
  if (grad_final != nullptr) {
    std::copy(grad_final, grad_final + m_count, adjoint.begin());
  }
  for (std::int64_t l = length - 1; l >= 0; --l) {
    const S4Value* x = states.data() + (l + 1) * m_count;
    const S4Value* previous = x - m_count;
    double bbar_dot = 0.0;
    for (std::int64_t m = 0; m < m_count; ++m) {
      adjoint[m] += grad_y[l] * 2.0 * std::conj(channel_.c[m]);
      gradient.c[m] += grad_y[l] * x[m];
      gradient.bbar[m] += adjoint[m] * u[l];
      bbar_dot += (std::conj(bbar_[m]) * adjoint[m]).real();
    }
    for (std::int64_t i = 0; i < n; ++i) {
      const double a_i = real_entry(adjoint.data(), m_count, i);
      double* row = gradient.abar.data() + i * n;
      for (std::int64_t j = 0; j < n; ++j) {
        row[j] += a_i * real_entry(previous, m_count, j);
      }
    }
    grad_u[l] = bbar_dot + channel_.d * grad_y[l];
    gradient.d += grad_y[l] * u[l];
    adjoint_step(adjoint.data());
  }
  if (grad_initial != nullptr) {
    std::copy(adjoint.begin(), adjoint.end(), grad_initial);
  }
}

// With M1 = I - dt/2 A, M2 = I + dt/2 A, Abar = M1^-1 M2 and Bbar = dt M1^-1 B:
//   dAbar = M1^-1 dM2 (Abar + I),   dBbar = ddt M1^-1 B + M1^-1 dM2 Bbar,   dM2 = ddt/2 A + dt/2 dA
// so with Z = M1^-T G_Abar (Abar + I)^T and h = M1^-T G_Bbar:
//   G_A = dt/2 (Z + h Bbar^T),  G_B = dt h,  G_dt = <Z + h Bbar^T, A> / 2 + h . B;
// then A = Rot(Lambda) - 2 p_r p_r^T (p_r = [Re p; Im p]) gives Lambda and p, dt = exp(log_dt).
void S4Discrete::add_parameter_gradients(const S4ChannelGradient& gradient,
                                         const S4Parameters& grad, std::int64_t h) const {
  const std::int64_t m_count = modes();
  const std::int64_t n = 2 * m_count;
  const double dt = channel_.dt;
  const std::vector<double> abar = dense_abar();
  const std::vector<double> a = dense_a();
  // W = G_Abar (Abar + I)^T, then Z = M1^-T W column by column.
  std::vector<double> z(static_cast<std::size_t>(n * n));
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j < n; ++j) {
      double sum = gradient.abar[i * n + j];
      for (std::int64_t k = 0; k < n; ++k) {
        sum += gradient.abar[i * n + k] * abar[j * n + k];
      }
      z[i * n + j] = sum;
    }
  }
  std::vector<S4Value> column(static_cast<std::size_t>(m_count));
  for (std::int64_t j = 0; j < n; ++j) {
    for (std::int64_t m = 0; m < m_count; ++m) {
      column[m] = {z[m * n + j], z[(m_count + m) * n + j]};
    }
    solve_backward_half(column.data(), true);
    for (std::int64_t i = 0; i < n; ++i) {
      z[i * n + j] = real_entry(column.data(), m_count, i);
    }
  }
  std::vector<S4Value> h_vector = gradient.bbar;
  solve_backward_half(h_vector.data(), true);
  // Z += h Bbar^T, so that G_A = dt/2 Z.
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j < n; ++j) {
      z[i * n + j] +=
          real_entry(h_vector.data(), m_count, i) * real_entry(bbar_.data(), m_count, j);
    }
  }
  double grad_dt = 0.0;
  for (std::int64_t e = 0; e < n * n; ++e) {
    grad_dt += 0.5 * z[e] * a[e];
  }
  for (std::int64_t m = 0; m < m_count; ++m) {
    grad_dt += (std::conj(h_vector[m]) * channel_.b[m]).real();
  }
  const double grad_a_scale = dt / 2.0;
  for (std::int64_t m = 0; m < m_count; ++m) {
    const std::int64_t at = 2 * (h * m_count + m);
    const std::int64_t r = m;
    const std::int64_t s = m_count + m;
    add_at(grad.lambda, at, grad_a_scale * (z[r * n + r] + z[s * n + s]));
    add_at(grad.lambda, at + 1, grad_a_scale * (z[s * n + r] - z[r * n + s]));
    // G_p_r = -2 (G_A + G_A^T) p_r.
    double grad_pr = 0.0;
    double grad_pi = 0.0;
    for (std::int64_t j = 0; j < n; ++j) {
      const double pj = real_entry(channel_.p.data(), m_count, j);
      grad_pr += (z[r * n + j] + z[j * n + r]) * pj;
      grad_pi += (z[s * n + j] + z[j * n + s]) * pj;
    }
    add_at(grad.p, at, -2.0 * grad_a_scale * grad_pr);
    add_at(grad.p, at + 1, -2.0 * grad_a_scale * grad_pi);
    add_at(grad.b, at, dt * h_vector[m].real());
    add_at(grad.b, at + 1, dt * h_vector[m].imag());
    add_at(grad.c, at, 2.0 * gradient.c[m].real());
    add_at(grad.c, at + 1, -2.0 * gradient.c[m].imag());
  }
  add_at(grad.log_dt, h, dt * grad_dt);
  add_at(grad.d, h, gradient.d);
}

std::vector<double> s4_matrix_power(const std::vector<double>& a, std::int64_t n,
                                    std::int64_t exponent) {
  LONGSEQ_CHECK(exponent >= 0, "[s4_matrix_power] negative exponent {}", exponent);
  const auto multiply = [n](const std::vector<double>& x, const std::vector<double>& y) {
    std::vector<double> product(static_cast<std::size_t>(n * n));
    for (std::int64_t i = 0; i < n; ++i) {
      for (std::int64_t k = 0; k < n; ++k) {
        const double xik = x[i * n + k];
        for (std::int64_t j = 0; j < n; ++j) {
          product[i * n + j] += xik * y[k * n + j];
        }
      }
    }
    return product;
  };
  std::vector<double> result(static_cast<std::size_t>(n * n));
  for (std::int64_t i = 0; i < n; ++i) {
    result[i * n + i] = 1.0;
  }
  std::vector<double> base = a;
  for (std::int64_t e = exponent; e > 0; e >>= 1) {
    if ((e & 1) != 0) {
      result = multiply(result, base);
    }
    if (e > 1) {
      base = multiply(base, base);
    }
  }
  return result;
}

}  // namespace longseq
