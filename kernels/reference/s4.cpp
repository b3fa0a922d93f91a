#include "kernels/reference/s4.h"

#include <cmath>
#include <complex>
#include <vector>

#include "kernels/s4_system.h"

namespace longseq::reference {

namespace {

using Value = std::complex<double>;

// The full-state discretised system of one channel.
struct DenseSystem {
  std::int64_t n = 0;       // 2M
  std::vector<Value> abar;  // (n, n)
  std::vector<Value> bbar;  // (n)
  std::vector<Value> c;     // (n)
  double d = 0.0;
};

// Solves m x = rhs for every column of rhs (n x cols), Gaussian elimination with partial pivots.
std::vector<Value> solve(std::vector<Value> m, std::vector<Value> rhs, std::int64_t n,
                         std::int64_t cols) {
  for (std::int64_t k = 0; k < n; ++k) {
    std::int64_t pivot = k;
    for (std::int64_t i = k + 1; i < n; ++i) {
      if (std::abs(m[i * n + k]) > std::abs(m[pivot * n + k])) {
        pivot = i;
      }
    }
    for (std::int64_t j = 0; j < n; ++j) {
      std::swap(m[k * n + j], m[pivot * n + j]);
    }
    for (std::int64_t j = 0; j < cols; ++j) {
      std::swap(rhs[k * cols + j], rhs[pivot * cols + j]);
    }
    for (std::int64_t i = k + 1; i < n; ++i) {
      const Value factor = m[i * n + k] / m[k * n + k];
      for (std::int64_t j = k; j < n; ++j) {
        m[i * n + j] -= factor * m[k * n + j];
      }
      for (std::int64_t j = 0; j < cols; ++j) {
        rhs[i * cols + j] -= factor * rhs[k * cols + j];
      }
    }
  }
  for (std::int64_t k = n - 1; k >= 0; --k) {
    for (std::int64_t j = 0; j < cols; ++j) {
      Value sum = rhs[k * cols + j];
      for (std::int64_t i = k + 1; i < n; ++i) {
        sum -= m[k * n + i] * rhs[i * cols + j];
      }
      rhs[k * cols + j] = sum / m[k * n + k];
    }
  }
  return rhs;
}

DenseSystem dense_system(const S4Parameters& parameters, std::int64_t h) {
  const S4Channel channel = s4_channel(parameters, h);
  const std::int64_t modes = channel.modes;
  const std::int64_t n = 2 * modes;
  std::vector<Value> lambda(n), p(n), b(n);
  DenseSystem system;
  system.n = n;
  system.d = channel.d;
  system.c.resize(n);
  for (std::int64_t m = 0; m < modes; ++m) {
    lambda[m] = channel.lambda[m];
    lambda[modes + m] = std::conj(channel.lambda[m]);
    p[m] = channel.p[m];
    p[modes + m] = std::conj(channel.p[m]);
    b[m] = channel.b[m];
    b[modes + m] = std::conj(channel.b[m]);
    system.c[m] = channel.c[m];
    system.c[modes + m] = std::conj(channel.c[m]);
  }
  const double half = channel.dt / 2.0;
  std::vector<Value> backward(n * n), forward(n * n);
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j < n; ++j) {
      const Value a = (i == j ? lambda[i] : Value{}) - p[i] * std::conj(p[j]);
      backward[i * n + j] = (i == j ? 1.0 : 0.0) - half * a;
      forward[i * n + j] = (i == j ? 1.0 : 0.0) + half * a;
    }
  }
  system.abar = solve(backward, forward, n, n);
  system.bbar = solve(backward, b, n, 1);
  for (Value& value : system.bbar) {
    value *= channel.dt;
  }
  return system;
}

std::vector<Value> multiply(const DenseSystem& system, const std::vector<Value>& x) {
  std::vector<Value> result(system.n);
  for (std::int64_t i = 0; i < system.n; ++i) {
    for (std::int64_t j = 0; j < system.n; ++j) {
      result[i] += system.abar[i * system.n + j] * x[j];
    }
  }
  return result;
}

double readout(const DenseSystem& system, const std::vector<Value>& x) {
  Value sum;
  for (std::int64_t i = 0; i < system.n; ++i) {
    sum += system.c[i] * x[i];
  }
  return sum.real();
}

}  // namespace

Tensor s4_kernel(const S4Parameters& parameters, std::int64_t length) {
  const std::int64_t channels = parameters.channels();
  const Tensor kernel = Tensor::empty({channels, length}, DType::f64);
  for (std::int64_t h = 0; h < channels; ++h) {
    const DenseSystem system = dense_system(parameters, h);
    std::vector<Value> power = system.bbar;  // Abar^l Bbar
    for (std::int64_t l = 0; l < length; ++l) {
      kernel.data<double>()[h * length + l] = readout(system, power);
      power = multiply(system, power);
    }
  }
  return kernel;
}

S4Result s4_recurrence(const S4Parameters& parameters, const Tensor& u, const Tensor& initial) {
  const std::int64_t batch = u.size(0);
  const std::int64_t channels = u.size(1);
  const std::int64_t length = u.size(2);
  const std::int64_t modes = parameters.modes();
  const Tensor ud = u.to(DType::f64);
  const Tensor xd = initial.defined() ? initial.to(DType::f64) : Tensor();
  S4Result result{Tensor::empty(u.shape(), DType::f64),
                  Tensor::empty({batch, channels, modes, 2}, DType::f64)};
  for (std::int64_t h = 0; h < channels; ++h) {
    const DenseSystem system = dense_system(parameters, h);
    for (std::int64_t b = 0; b < batch; ++b) {
      const std::int64_t row = b * channels + h;
      std::vector<Value> x(2 * modes);
      if (xd.defined()) {
        for (std::int64_t m = 0; m < modes; ++m) {
          x[m] = {xd.data<double>()[(row * modes + m) * 2],
                  xd.data<double>()[(row * modes + m) * 2 + 1]};
          x[modes + m] = std::conj(x[m]);
        }
      }
      for (std::int64_t l = 0; l < length; ++l) {
        const double input = ud.data<double>()[row * length + l];
        x = multiply(system, x);
        for (std::int64_t i = 0; i < 2 * modes; ++i) {
          x[i] += system.bbar[i] * input;
        }
        result.y.data<double>()[row * length + l] = readout(system, x) + system.d * input;
      }
      for (std::int64_t m = 0; m < modes; ++m) {
        result.final.data<double>()[(row * modes + m) * 2] = x[m].real();
        result.final.data<double>()[(row * modes + m) * 2 + 1] = x[m].imag();
      }
    }
  }
  return result;
}

}  // namespace longseq::reference
