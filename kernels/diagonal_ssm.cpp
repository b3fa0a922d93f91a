// The diagonal state-space layer (kernels/diagonal_ssm.h): parameters, checks, and the per-mode
// algebra around the two backend Vandermonde products (kernels/cpu/diagonal_ssm.cpp,
// kernels/cuda/diagonal_ssm.cu):
//   eval(coef)   out_l = Re(sum_m coef_m exp(l z_m))
//   sums(s)      S_m = sum_l s_l exp(l z_m),  S'_m = sum_l l s_l exp(l z_m)
// with z = dt Lambda. Everything of size H M or B H M (discretisation, coefficients, states and
// the chain rule through them) is done here on the host in double; only O(L) work runs on the
// tensors' device.
//
// Gradients of complex quantities. The layer is real-valued and every complex map in it is
// holomorphic, so each complex quantity w carries one complex adjoint a_w with
// dL = Re(sum a_w dw); its stored gradient (dL/d re, dL/d im) is conj(a_w), and adjoints flow
// back through a holomorphic f as a_w = a_f f'(w). For a real parameter p, dL/dp = Re(a_w dw/dp).
//   K_l = scale Re(sum_m W_m exp(l z_m)),  W = C Bbar:  a_W = scale S(dK),  a_z = scale W S'(dK)
//   correction y_l += Re(sum_m q_m exp(l z_m)), q = scale C Abar x_in:  a_q = S(dy),
//                                            a_z += q S'(dy)
//   final x_out = Abar^L x_in + Bbar S(u reversed):  a_Bbar += a_out S,  a_z += a_out Bbar S'
//                                                   + a_out x_in L Abar^L,  a_in += a_out Abar^L
//   Bbar = (Abar - 1) B / Lambda, Abar = exp(z), z = dt Lambda, dt = exp(log_dt).
#include "kernels/diagonal_ssm.h"

#include <algorithm>
#include <cmath>
#include <complex>
#include <vector>

#include "kernels/backends.h"
#include "kernels/common/diagonal_ssm_math.h"
#include "kernels/tensor_checks.h"
#include "kernels/toeplitz.h"
#include "runtime/memory.h"
#include "runtime/philox.h"

namespace longseq {

namespace {

using Complex = std::complex<double>;
constexpr double kPi = 3.14159265358979323846;

// Random streams of the initialisations (runtime/philox.h).
constexpr std::uint64_t kLogDtStream = 1;
constexpr std::uint64_t kCStream = 2;
constexpr std::uint64_t kDStream = 3;
constexpr std::uint64_t kLambdaStream = 4;

// The geometry of one call.
struct SsmShape {
  std::int64_t batch = 0;
  std::int64_t channels = 0;
  std::int64_t length = 0;
  std::int64_t modes = 0;
};

std::vector<Complex> complex_values(const Tensor& tensor) {
  const Tensor host = tensor.to(Device::cpu).contiguous();
  const float* data = host.data<float>();
  std::vector<Complex> values(static_cast<std::size_t>(host.numel() / 2));
  for (std::size_t i = 0; i < values.size(); ++i) {
    values[i] = {data[2 * i], data[2 * i + 1]};
  }
  return values;
}

std::vector<double> real_values(const Tensor& tensor) {
  const Tensor host = tensor.to(Device::cpu).contiguous();
  return {host.data<float>(), host.data<float>() + host.numel()};
}

// A tensor of `shape` (trailing 2: re, im) on `device` holding `values`.
Tensor complex_tensor(const std::vector<Complex>& values, const Shape& shape, Device device) {
  const Tensor host = Tensor::empty(shape, DType::f32);
  float* data = host.data<float>();
  for (std::size_t i = 0; i < values.size(); ++i) {
    data[2 * i] = static_cast<float>(values[i].real());
    data[2 * i + 1] = static_cast<float>(values[i].imag());
  }
  return host.to(device);
}

Tensor real_tensor(const std::vector<double>& values, const Shape& shape, Device device) {
  const Tensor host = Tensor::empty(shape, DType::f32);
  for (std::size_t i = 0; i < values.size(); ++i) {
    host.data<float>()[i] = static_cast<float>(values[i]);
  }
  return host.to(device);
}

// Adds host values into a (possibly device) fp32 tensor.
void add_into(const Tensor& tensor, const std::vector<double>& values) {
  if (!tensor.defined()) {
    return;
  }
  const Tensor host = tensor.to(Device::cpu).clone();
  for (std::size_t i = 0; i < values.size(); ++i) {
    host.data<float>()[i] += static_cast<float>(values[i]);
  }
  tensor.copy_from(host.to(tensor.device()));
}

void add_into(const Tensor& tensor, const std::vector<Complex>& values) {
  std::vector<double> flat;
  flat.reserve(2 * values.size());
  for (const Complex& value : values) {
    flat.push_back(value.real());
    flat.push_back(value.imag());
  }
  add_into(tensor, flat);
}

// The discretised parameters of every (channel, mode), index h * M + m, in double.
struct Modes {
  std::int64_t channels = 0;
  std::int64_t count = 0;
  bool shared = false;  // Lambda is one row for every channel (DSS)
  double scale = 1.0;
  std::vector<double> dt, d;
  std::vector<Complex> lambda, b, c, z, abar, bbar;

  [[nodiscard]] std::size_t at(std::int64_t h, std::int64_t m) const {
    return static_cast<std::size_t>(h * count + m);
  }
  // z as the (H, M, 2) fp64 tensor the backend products take.
  [[nodiscard]] Tensor z_tensor(Device device) const {
    const Tensor host = Tensor::empty({channels, count, 2}, DType::f64);
    for (std::size_t i = 0; i < z.size(); ++i) {
      host.data<double>()[2 * i] = z[i].real();
      host.data<double>()[2 * i + 1] = z[i].imag();
    }
    return host.to(device);
  }
};

Modes discretise(DiagonalSsmKind kind, const DiagonalSsmParameters& p) {
  Modes modes;
  modes.channels = p.b.size(0);
  modes.count = p.b.size(1);
  modes.shared = p.lambda.size(0) == 1;
  modes.scale = diagonal_ssm_scale(kind);
  modes.d = real_values(p.d);
  const std::vector<double> log_dt = real_values(p.log_dt);
  const std::vector<Complex> lambda = complex_values(p.lambda);
  modes.b = complex_values(p.b);
  modes.c = complex_values(p.c);
  for (std::int64_t h = 0; h < modes.channels; ++h) {
    const double dt = std::exp(log_dt[h]);
    modes.dt.push_back(dt);
    for (std::int64_t m = 0; m < modes.count; ++m) {
      const Complex l = lambda[modes.shared ? m : modes.at(h, m)];
      const Complex z = dt * l;
      const Complex abar = std::exp(z);
      modes.lambda.push_back(l);
      modes.z.push_back(z);
      modes.abar.push_back(abar);
      modes.bbar.push_back((abar - 1.0) / l * modes.b[modes.at(h, m)]);
    }
  }
  return modes;
}

// exp(length z) computed directly.
Complex power(const Complex& z, std::int64_t length) {
  const SsmComplex<double> p = mode_power_f64(static_cast<double>(length), z.real(), z.imag());
  return {p.re, p.im};
}

SsmShape checked_shape(const char* op, DiagonalSsmKind kind, const DiagonalSsmParameters& p,
                       const Tensor& u) {
  LONGSEQ_CHECK(u.rank() == 3, "[{}] u must be (B, H, L), got {}", op, u.describe());
  check_contiguous(op, "u", u);
  LONGSEQ_CHECK(u.dtype() == DType::f32, "[{}] takes fp32, got {}", op, u.describe());
  SsmShape shape{u.size(0), u.size(1), u.size(2), p.b.defined() ? p.b.size(1) : 0};
  LONGSEQ_CHECK(p.b.rank() == 3 && shape.modes >= 1, "[{}] b must be (H, M, 2), got {}", op,
                p.b.describe());
  const std::int64_t lambda_rows = kind == DiagonalSsmKind::dss ? 1 : shape.channels;
  check_tensor(op, "log_dt", p.log_dt, {shape.channels}, DType::f32, u.device());
  check_tensor(op, "lambda", p.lambda, {lambda_rows, shape.modes, 2}, DType::f32, u.device());
  check_tensor(op, "b", p.b, {shape.channels, shape.modes, 2}, DType::f32, u.device());
  check_tensor(op, "c", p.c, {shape.channels, shape.modes, 2}, DType::f32, u.device());
  check_tensor(op, "d", p.d, {shape.channels}, DType::f32, u.device());
  return shape;
}

void check_state(const char* op, const char* name, const Tensor& state, const SsmShape& shape,
                 Device device) {
  if (state.defined()) {
    check_tensor(op, name, state, {shape.batch, shape.channels, shape.modes, 2}, DType::f32,
                 device);
  }
}

auto eval_on(Device device) {
  return device == Device::cpu ? cpu::diagonal_ssm_vandermonde_eval
                               : cuda::diagonal_ssm_vandermonde_eval;
}
auto sums_on(Device device) {
  return device == Device::cpu ? cpu::diagonal_ssm_vandermonde_sums
                               : cuda::diagonal_ssm_vandermonde_sums;
}

// t (H, 2L - 1) of the causal convolution: t[L - 1 - s] = K_s + D [s = 0], zero above.
Tensor toeplitz_row(ComputeContext& context, const Modes& modes, const Tensor& z,
                    const DiagonalSsmParameters& p, std::int64_t length, Device device) {
  std::vector<Complex> w(modes.z.size());
  for (std::size_t i = 0; i < w.size(); ++i) {
    w[i] = modes.scale * modes.c[i] * modes.bbar[i];
  }
  const Tensor t = Tensor::zeros({modes.channels, 2 * length - 1}, DType::f32, device);
  eval_on(device)(context, z, complex_tensor(w, {1, modes.channels, modes.count, 2}, device),
                  p.d.reshape({1, modes.channels}), length, true,
                  t.reshape({1, modes.channels, 2 * length - 1}), false);
  return t;
}

// Per (b, h, m): the complex factor `f(b, h, m)` as a (B, H, M, 2) tensor.
template <typename Factor>
Tensor per_state(const SsmShape& shape, const Modes& modes, Device device, Factor&& factor) {
  std::vector<Complex> values(static_cast<std::size_t>(shape.batch) * modes.z.size());
  for (std::int64_t b = 0; b < shape.batch; ++b) {
    for (std::size_t i = 0; i < modes.z.size(); ++i) {
      values[b * modes.z.size() + i] = factor(b, i);
    }
  }
  return complex_tensor(values, {shape.batch, shape.channels, shape.modes, 2}, device);
}

// The adjoints of one backward call, index h * M + m (a_in: b * H M + h * M + m).
struct Adjoints {
  std::vector<Complex> z, c, bbar, abar, in;

  Adjoints(std::size_t modes, std::size_t states)
      : z(modes), c(modes), bbar(modes), abar(modes), in(states) {}
};

// Through W = C Bbar, Bbar = (Abar - 1) B / Lambda, Abar = exp(z), z = dt Lambda, dt = exp(log_dt)
// into the stored gradients of the parameters (added).
void add_parameter_gradients(const Modes& modes, Adjoints& a, const std::vector<double>& grad_d,
                             const DiagonalSsmParameters& grad) {
  const std::size_t n = modes.z.size();
  std::vector<Complex> grad_lambda(modes.shared ? static_cast<std::size_t>(modes.count) : n);
  std::vector<Complex> grad_b(n), grad_c(n);
  std::vector<double> grad_log_dt(static_cast<std::size_t>(modes.channels), 0.0);
  for (std::int64_t h = 0; h < modes.channels; ++h) {
    for (std::int64_t m = 0; m < modes.count; ++m) {
      const std::size_t i = modes.at(h, m);
      const Complex& lambda = modes.lambda[i];
      const Complex& abar = modes.abar[i];
      const Complex& b = modes.b[i];
      const Complex a_b = a.bbar[i] * (abar - 1.0) / lambda;
      Complex a_lambda = -a.bbar[i] * (abar - 1.0) * b / (lambda * lambda);
      const Complex a_abar = a.abar[i] + a.bbar[i] * b / lambda;
      const Complex a_z = a.z[i] + a_abar * abar;
      a_lambda += a_z * modes.dt[h];
      grad_log_dt[h] += (a_z * modes.z[i]).real();
      grad_lambda[modes.shared ? static_cast<std::size_t>(m) : i] += std::conj(a_lambda);
      grad_b[i] = std::conj(a_b);
      grad_c[i] = std::conj(a.c[i]);
    }
  }
  add_into(grad.log_dt, grad_log_dt);
  add_into(grad.lambda, grad_lambda);
  add_into(grad.b, grad_b);
  add_into(grad.c, grad_c);
  add_into(grad.d, grad_d);
}

Tensor complex_scratch(const Shape& shape, Device device) {
  return Tensor::empty(shape, DType::f32, device);
}

// A sequence cut into pieces of `piece_length` positions (the last one shorter): their shapes,
// and their positions of (B, H, L) tensors copied to and from contiguous (B, H, n) tensors, one
// copy per (b, h) row.
class Pieces {
 public:
  Pieces(const SsmShape& whole, std::int64_t piece_length, Device device)
      : whole_(whole), piece_length_(piece_length), device_(device) {}

  [[nodiscard]] std::int64_t count() const {
    return (whole_.length + piece_length_ - 1) / piece_length_;
  }
  [[nodiscard]] SsmShape shape(std::int64_t k) const {
    SsmShape shape = whole_;
    shape.length = std::min(piece_length_, whole_.length - k * piece_length_);
    return shape;
  }
  [[nodiscard]] Tensor state() const {
    return Tensor::empty({whole_.batch, whole_.channels, whole_.modes, 2}, DType::f32, device_);
  }
  [[nodiscard]] Tensor empty_rows(std::int64_t k) const {
    return Tensor::empty({whole_.batch, whole_.channels, shape(k).length}, DType::f32, device_);
  }
  [[nodiscard]] Tensor rows(const Tensor& whole, std::int64_t k) const {
    const Tensor piece = empty_rows(k);
    copy(whole.data<float>() + k * piece_length_, whole_.length, piece.data<float>(), piece.size(2),
         piece.size(2));
    return piece;
  }
  void place(const Tensor& piece, const Tensor& whole, std::int64_t k) const {
    copy(piece.data<float>(), piece.size(2), whole.data<float>() + k * piece_length_, whole_.length,
         piece.size(2));
  }

 private:
  void copy(const float* from, std::int64_t from_stride, float* to, std::int64_t to_stride,
            std::int64_t count) const {
    for (std::int64_t row = 0; row < whole_.batch * whole_.channels; ++row) {
      copy_bytes(to + row * to_stride, device_, from + row * from_stride, device_,
                 static_cast<std::size_t>(count) * sizeof(float));
    }
  }

  SsmShape whole_;
  std::int64_t piece_length_;
  Device device_;
};

// diagonal_ssm_forward on one piece, checked by the caller.
void forward_piece(ComputeContext& context, DiagonalSsmKind kind,
                   const DiagonalSsmParameters& parameters, const SsmShape& shape, const Tensor& u,
                   const Tensor& initial, const Tensor& y, const Tensor& final) {
  const Device device = u.device();
  const Modes modes = discretise(kind, parameters);
  const Tensor z = modes.z_tensor(device);
  const std::vector<Complex> x_in =
      initial.defined() ? complex_values(initial) : std::vector<Complex>();
  if (y.defined()) {
    if (shape.length == 0) {
      return;
    }
    const Tensor t = toeplitz_row(context, modes, z, parameters, shape.length, device);
    toeplitz_product(context, t, u.reshape({shape.batch, shape.channels, shape.length, 1}),
                     y.reshape({shape.batch, shape.channels, shape.length, 1}));
    if (initial.defined()) {
      const Tensor coef = per_state(shape, modes, device, [&](std::int64_t b, std::size_t i) {
        return modes.scale * modes.c[i] * modes.abar[i] * x_in[b * modes.z.size() + i];
      });
      eval_on(device)(context, z, coef, Tensor(), shape.length, false, y, true);
    }
  }
  if (final.defined()) {
    const Tensor sums = complex_scratch(final.shape(), device);
    sums_on(device)(context, z, u, shape.length, true, sums, Tensor(), Tensor());
    const std::vector<Complex> local = complex_values(sums);
    std::vector<Complex> out(local.size());
    for (std::int64_t b = 0; b < shape.batch; ++b) {
      for (std::size_t i = 0; i < modes.z.size(); ++i) {
        const std::size_t s = b * modes.z.size() + i;
        out[s] = modes.bbar[i] * local[s];
        if (initial.defined()) {
          out[s] += power(modes.z[i], shape.length) * x_in[s];
        }
      }
    }
    final.copy_from(complex_tensor(out, final.shape(), device));
  }
}

// diagonal_ssm_backward on one piece, checked by the caller.
void backward_piece(ComputeContext& context, DiagonalSsmKind kind,
                    const DiagonalSsmParameters& parameters, const SsmShape& shape, const Tensor& u,
                    const Tensor& grad_y, const Tensor& initial, const Tensor& grad_final,
                    const Tensor& grad_u, const DiagonalSsmParameters& grad_parameters,
                    const Tensor& grad_initial) {
  const Device device = u.device();
  const bool want_parameters = grad_parameters.log_dt.defined();
  const Modes modes = discretise(kind, parameters);
  const Tensor z = modes.z_tensor(device);
  const std::size_t per_row = modes.z.size();
  Adjoints a(per_row, static_cast<std::size_t>(shape.batch) * per_row);
  std::vector<double> grad_d(static_cast<std::size_t>(shape.channels), 0.0);
  const std::vector<Complex> x_in =
      initial.defined() ? complex_values(initial) : std::vector<Complex>();
  const std::int64_t length = shape.length;
  const Shape state_shape{shape.batch, shape.channels, shape.modes, 2};
  const Shape kernel_shape{1, shape.channels, shape.modes, 2};

  // The convolution: grad_u and dL/dt.
  if (grad_u.defined()) {
    grad_u.zero();
  }
  if (grad_y.defined() && length > 0 && (grad_u.defined() || want_parameters)) {
    const Tensor t = toeplitz_row(context, modes, z, parameters, length, device);
    const Tensor grad_t = want_parameters ? Tensor::empty(t.shape(), DType::f32, device) : Tensor();
    const Shape column{shape.batch, shape.channels, length, 1};
    toeplitz_product_backward(context, t, u.reshape(column), grad_y.reshape(column),
                              grad_u.defined() ? grad_u.reshape(column) : Tensor(), grad_t);
    if (want_parameters) {
      const Tensor sums = complex_scratch(kernel_shape, device);
      const Tensor weighted = complex_scratch(kernel_shape, device);
      const Tensor first = Tensor::empty({1, shape.channels}, DType::f32, device);
      sums_on(device)(context, z, grad_t.reshape({1, shape.channels, 2 * length - 1}), length, true,
                      sums, weighted, first);
      const std::vector<Complex> s = complex_values(sums);
      const std::vector<Complex> s_weighted = complex_values(weighted);
      grad_d = real_values(first);
      for (std::size_t i = 0; i < per_row; ++i) {
        const Complex a_w = modes.scale * s[i];
        a.c[i] += a_w * modes.bbar[i];
        a.bbar[i] += a_w * modes.c[i];
        a.z[i] += modes.scale * modes.c[i] * modes.bbar[i] * s_weighted[i];
      }
    }
  }
  // The correction by the initial state: adjoints of x_in and of the parameters.
  const bool want_initial_path = grad_initial.defined() || want_parameters;
  if (initial.defined() && grad_y.defined() && length > 0 && want_initial_path) {
    const Tensor sums = complex_scratch(state_shape, device);
    const Tensor weighted = want_parameters ? complex_scratch(state_shape, device) : Tensor();
    sums_on(device)(context, z, grad_y, length, false, sums, weighted, Tensor());
    const std::vector<Complex> s = complex_values(sums);
    const std::vector<Complex> s_weighted =
        want_parameters ? complex_values(weighted) : std::vector<Complex>();
    for (std::int64_t b = 0; b < shape.batch; ++b) {
      for (std::size_t i = 0; i < per_row; ++i) {
        const std::size_t k = b * per_row + i;
        const Complex a_q = modes.scale * s[k];
        a.in[k] += a_q * modes.c[i] * modes.abar[i];
        if (want_parameters) {
          a.c[i] += a_q * modes.abar[i] * x_in[k];
          a.abar[i] += a_q * modes.c[i] * x_in[k];
          a.z[i] += modes.scale * modes.c[i] * modes.abar[i] * x_in[k] * s_weighted[k];
        }
      }
    }
  }
  // The final state: x_out = Abar^L x_in + Bbar S(u reversed).
  if (grad_final.defined()) {
    const std::vector<Complex> g = complex_values(grad_final);
    if (grad_u.defined() && length > 0) {
      const Tensor coef = per_state(shape, modes, device, [&](std::int64_t b, std::size_t i) {
        return std::conj(g[b * per_row + i]) * modes.bbar[i];
      });
      eval_on(device)(context, z, coef, Tensor(), length, true, grad_u, true);
    }
    if (want_parameters && length > 0) {
      const Tensor sums = complex_scratch(state_shape, device);
      const Tensor weighted = complex_scratch(state_shape, device);
      sums_on(device)(context, z, u, length, true, sums, weighted, Tensor());
      const std::vector<Complex> s = complex_values(sums);
      const std::vector<Complex> s_weighted = complex_values(weighted);
      for (std::int64_t b = 0; b < shape.batch; ++b) {
        for (std::size_t i = 0; i < per_row; ++i) {
          const Complex a_out = std::conj(g[b * per_row + i]);
          a.bbar[i] += a_out * s[b * per_row + i];
          a.z[i] += a_out * modes.bbar[i] * s_weighted[b * per_row + i];
        }
      }
    }
    if (initial.defined()) {
      for (std::int64_t b = 0; b < shape.batch; ++b) {
        for (std::size_t i = 0; i < per_row; ++i) {
          const std::size_t k = b * per_row + i;
          const Complex decay = power(modes.z[i], length);
          const Complex a_out = std::conj(g[k]);
          a.in[k] += a_out * decay;
          a.z[i] += a_out * x_in[k] * static_cast<double>(length) * decay;
        }
      }
    }
  }
  if (want_parameters) {
    add_parameter_gradients(modes, a, grad_d, grad_parameters);
  }
  if (grad_initial.defined()) {
    std::vector<Complex> stored(a.in.size());
    for (std::size_t k = 0; k < stored.size(); ++k) {
      stored[k] = std::conj(a.in[k]);
    }
    grad_initial.copy_from(complex_tensor(stored, state_shape, device));
  }
}

}  // namespace

double diagonal_ssm_scale(DiagonalSsmKind kind) { return kind == DiagonalSsmKind::s4d ? 2.0 : 1.0; }

DiagonalSsmParameters make_s4d_parameters(std::int64_t channels, std::int64_t state_size,
                                          std::uint64_t seed) {
  LONGSEQ_REQUIRE(channels >= 1 && state_size >= 2 && state_size % 2 == 0,
                  "[s4d] needs channels >= 1 and an even state size >= 2, got {} and {}", channels,
                  state_size);
  const std::int64_t modes = state_size / 2;
  std::vector<double> log_dt, d;
  std::vector<Complex> lambda, b, c;
  const double low = std::log(1e-3);
  const double high = std::log(1e-1);
  for (std::int64_t h = 0; h < channels; ++h) {
    log_dt.push_back(low + (high - low) * random_uniform(seed, kLogDtStream, h));
    d.push_back(random_normal(seed, kDStream, h));
    for (std::int64_t m = 0; m < modes; ++m) {
      const std::uint64_t i = static_cast<std::uint64_t>(h * modes + m);
      lambda.emplace_back(-0.5, kPi * static_cast<double>(m));
      b.emplace_back(1.0, 0.0);
      c.emplace_back(std::sqrt(0.5) * random_normal(seed, kCStream, 2 * i),
                     std::sqrt(0.5) * random_normal(seed, kCStream, 2 * i + 1));
    }
  }
  return {real_tensor(log_dt, {channels}, Device::cpu),
          complex_tensor(lambda, {channels, modes, 2}, Device::cpu),
          complex_tensor(b, {channels, modes, 2}, Device::cpu),
          complex_tensor(c, {channels, modes, 2}, Device::cpu),
          real_tensor(d, {channels}, Device::cpu)};
}

DiagonalSsmParameters make_dss_parameters(std::int64_t channels, std::int64_t state_size,
                                          std::uint64_t seed, double dt_fixed) {
  LONGSEQ_REQUIRE(channels >= 1 && state_size >= 1,
                  "[dss] needs channels >= 1 and a state size >= 1, got {} and {}", channels,
                  state_size);
  const std::int64_t modes = state_size;
  DiagonalSsmParameters p = make_s4d_parameters(channels, 2 * modes, seed);
  // Shared Lambda_m = -exp(g / 2) / 2 + i pi (m + v), g ~ N(0, 1), v ~ U(-1/2, 1/2): negative real
  // parts around -1/2, imaginary parts spread over the modes with jitter.
  std::vector<Complex> lambda;
  for (std::int64_t m = 0; m < modes; ++m) {
    const auto i = static_cast<std::uint64_t>(m);
    const double real = -0.5 * std::exp(0.5 * random_normal(seed, kLambdaStream, 2 * i));
    const double jitter = random_uniform(seed, kLambdaStream, 2 * i + 1) - 0.5;
    lambda.emplace_back(real, kPi * (static_cast<double>(m) + jitter));
  }
  p.lambda = complex_tensor(lambda, {1, modes, 2}, Device::cpu);
  if (dt_fixed > 0.0) {
    p.log_dt =
        real_tensor(std::vector<double>(static_cast<std::size_t>(channels), std::log(dt_fixed)),
                    {channels}, Device::cpu);
  }
  return p;
}

DiagonalSsmParameters zeros_like(const DiagonalSsmParameters& p) {
  const auto zero = [](const Tensor& t) {
    return Tensor::zeros(t.shape(), DType::f32, t.device());
  };
  return {zero(p.log_dt), zero(p.lambda), zero(p.b), zero(p.c), zero(p.d)};
}

void diagonal_ssm_forward(ComputeContext& context, DiagonalSsmKind kind,
                          const DiagonalSsmParameters& parameters, const Tensor& u,
                          const Tensor& initial, const Tensor& y, const Tensor& final,
                          std::int64_t piece_length) {
  constexpr const char* kOp = "diagonal_ssm_forward";
  const SsmShape shape = checked_shape(kOp, kind, parameters, u);
  check_state(kOp, "initial", initial, shape, u.device());
  check_state(kOp, "final", final, shape, u.device());
  if (y.defined()) {
    check_like(kOp, "y", y, u);
  }
  LONGSEQ_CHECK(piece_length >= 1, "[{}] piece length {} < 1", kOp, piece_length);
  if (!y.defined() || shape.length <= piece_length) {
    forward_piece(context, kind, parameters, shape, u, initial, y, final);
    return;
  }
  const Pieces pieces(shape, piece_length, u.device());
  Tensor state = initial;
  for (std::int64_t k = 0; k < pieces.count(); ++k) {
    const bool last = k + 1 == pieces.count();
    const Tensor next = last ? final : pieces.state();
    const Tensor piece_y = pieces.empty_rows(k);
    forward_piece(context, kind, parameters, pieces.shape(k), pieces.rows(u, k), state, piece_y,
                  next);
    pieces.place(piece_y, y, k);
    state = next;
  }
}

void diagonal_ssm_backward(ComputeContext& context, DiagonalSsmKind kind,
                           const DiagonalSsmParameters& parameters, const Tensor& u,
                           const Tensor& grad_y, const Tensor& initial, const Tensor& grad_final,
                           const Tensor& grad_u, const DiagonalSsmParameters& grad_parameters,
                           const Tensor& grad_initial, std::int64_t piece_length) {
  constexpr const char* kOp = "diagonal_ssm_backward";
  const SsmShape shape = checked_shape(kOp, kind, parameters, u);
  const Device device = u.device();
  check_state(kOp, "initial", initial, shape, device);
  check_state(kOp, "grad_final", grad_final, shape, device);
  check_state(kOp, "grad_initial", grad_initial, shape, device);
  if (grad_y.defined()) {
    check_like(kOp, "grad_y", grad_y, u);
  }
  if (grad_u.defined()) {
    check_like(kOp, "grad_u", grad_u, u);
  }
  if (grad_parameters.log_dt.defined()) {
    static_cast<void>(checked_shape(kOp, kind, grad_parameters, u));
  }
  LONGSEQ_CHECK(piece_length >= 1, "[{}] piece length {} < 1", kOp, piece_length);
  if (!grad_y.defined() || shape.length <= piece_length) {
    backward_piece(context, kind, parameters, shape, u, grad_y, initial, grad_final, grad_u,
                   grad_parameters, grad_initial);
    return;
  }
  // The state each piece starts from (piece 0: `initial`), then the pieces in reverse, each
  // piece's initial-state gradient becoming the final-state gradient of the piece before it.
  const Pieces pieces(shape, piece_length, device);
  std::vector<Tensor> incoming{initial};
  for (std::int64_t k = 0; k + 1 < pieces.count(); ++k) {
    const Tensor next = pieces.state();
    forward_piece(context, kind, parameters, pieces.shape(k), pieces.rows(u, k), incoming.back(),
                  Tensor(), next);
    incoming.push_back(next);
  }
  Tensor grad_next = grad_final;
  for (std::int64_t k = pieces.count() - 1; k >= 0; --k) {
    const Tensor grad_incoming = k > 0 ? pieces.state() : grad_initial;
    const Tensor piece_grad_u = grad_u.defined() ? pieces.empty_rows(k) : Tensor();
    backward_piece(context, kind, parameters, pieces.shape(k), pieces.rows(u, k),
                   pieces.rows(grad_y, k), incoming[static_cast<std::size_t>(k)], grad_next,
                   piece_grad_u, grad_parameters, grad_incoming);
    if (grad_u.defined()) {
      pieces.place(piece_grad_u, grad_u, k);
    }
    grad_next = grad_incoming;
  }
}

void diagonal_ssm_kernel(ComputeContext& context, DiagonalSsmKind kind,
                         const DiagonalSsmParameters& parameters, const Tensor& kernel) {
  constexpr const char* kOp = "diagonal_ssm_kernel";
  LONGSEQ_CHECK(kernel.rank() == 2, "[{}] kernel must be (H, L), got {}", kOp, kernel.describe());
  const SsmShape shape =
      checked_shape(kOp, kind, parameters, kernel.reshape({1, kernel.size(0), kernel.size(1)}));
  const Modes modes = discretise(kind, parameters);
  std::vector<Complex> w(modes.z.size());
  for (std::size_t i = 0; i < w.size(); ++i) {
    w[i] = modes.scale * modes.c[i] * modes.bbar[i];
  }
  const Device device = kernel.device();
  eval_on(device)(context, modes.z_tensor(device),
                  complex_tensor(w, {1, shape.channels, shape.modes, 2}, device), Tensor(),
                  shape.length, false, kernel.reshape({1, shape.channels, shape.length}), false);
}

void diagonal_ssm_kernel_backward(ComputeContext& context, DiagonalSsmKind kind,
                                  const DiagonalSsmParameters& parameters,
                                  const Tensor& grad_kernel,
                                  const DiagonalSsmParameters& grad_parameters) {
  constexpr const char* kOp = "diagonal_ssm_kernel_backward";
  LONGSEQ_CHECK(grad_kernel.rank() == 2, "[{}] grad_kernel must be (H, L), got {}", kOp,
                grad_kernel.describe());
  const Tensor signal = grad_kernel.reshape({1, grad_kernel.size(0), grad_kernel.size(1)});
  const SsmShape shape = checked_shape(kOp, kind, parameters, signal);
  const Modes modes = discretise(kind, parameters);
  const Device device = grad_kernel.device();
  const Shape kernel_shape{1, shape.channels, shape.modes, 2};
  const Tensor sums = complex_scratch(kernel_shape, device);
  const Tensor weighted = complex_scratch(kernel_shape, device);
  sums_on(device)(context, modes.z_tensor(device), signal, shape.length, false, sums, weighted,
                  Tensor());
  const std::vector<Complex> s = complex_values(sums);
  const std::vector<Complex> s_weighted = complex_values(weighted);
  Adjoints a(modes.z.size(), 0);
  for (std::size_t i = 0; i < modes.z.size(); ++i) {
    const Complex a_w = modes.scale * s[i];
    a.c[i] = a_w * modes.bbar[i];
    a.bbar[i] = a_w * modes.c[i];
    a.z[i] = modes.scale * modes.c[i] * modes.bbar[i] * s_weighted[i];
  }
  add_parameter_gradients(modes, a, std::vector<double>(static_cast<std::size_t>(shape.channels)),
                          grad_parameters);
}

Tensor diagonal_ssm_decay(const DiagonalSsmParameters& parameters, std::int64_t length) {
  const Modes modes = discretise(DiagonalSsmKind::s4d, parameters);
  std::vector<Complex> decay;
  for (const Complex& z : modes.z) {
    decay.push_back(power(z, length));
  }
  return complex_tensor(decay, {modes.channels, modes.count, 2}, Device::cpu);
}

void diagonal_ssm_step(ComputeContext& /*context*/, DiagonalSsmKind kind,
                       const DiagonalSsmParameters& parameters, const Tensor& u,
                       const Tensor& state, const Tensor& y) {
  constexpr const char* kOp = "diagonal_ssm_step";
  LONGSEQ_CHECK(u.rank() == 2, "[{}] u must be (B, H), got {}", kOp, u.describe());
  const SsmShape shape = checked_shape(kOp, kind, parameters, u.reshape({u.size(0), u.size(1), 1}));
  check_state(kOp, "state", state, shape, u.device());
  LONGSEQ_CHECK(state.defined(), "[{}] needs a state to update", kOp);
  check_like(kOp, "y", y, u);
  const Modes modes = discretise(kind, parameters);
  const std::vector<double> input = real_values(u);
  std::vector<Complex> x = complex_values(state);
  std::vector<double> out(input.size(), 0.0);
  for (std::int64_t b = 0; b < shape.batch; ++b) {
    for (std::int64_t h = 0; h < shape.channels; ++h) {
      const std::size_t row = static_cast<std::size_t>(b * shape.channels + h);
      double sum = 0.0;
      for (std::int64_t m = 0; m < shape.modes; ++m) {
        const std::size_t i = modes.at(h, m);
        Complex& xm = x[b * modes.z.size() + i];
        xm = modes.abar[i] * xm + modes.bbar[i] * input[row];
        sum += (modes.c[i] * xm).real();
      }
      out[row] = modes.scale * sum + modes.d[h] * input[row];
    }
  }
  state.copy_from(complex_tensor(x, state.shape(), state.device()));
  y.copy_from(real_tensor(out, y.shape(), y.device()));
}

namespace {

// One piece's FLOPs by the convention of kernels/diagonal_ssm.h; `per_state` is the count per
// position of each state term (8 forward, 16 backward).
double piece_flops(const SsmShape& shape, double transforms, double kernel_terms, double per_state,
                   bool with_initial, bool with_final) {
  const double states =
      per_state * static_cast<double>(shape.batch * shape.channels * shape.length * shape.modes);
  return transforms *
             toeplitz_product_flops(shape.batch, shape.channels, shape.length, shape.length, 1) +
         kernel_terms * static_cast<double>(shape.length * shape.modes * shape.channels) +
         (with_initial ? states : 0.0) + (with_final ? states : 0.0);
}

}  // namespace

double diagonal_ssm_forward_flops(std::int64_t batch, std::int64_t channels, std::int64_t length,
                                  std::int64_t modes, bool with_initial, bool with_final,
                                  std::int64_t piece_length) {
  const Pieces pieces({batch, channels, length, modes}, piece_length, Device::cpu);
  double flops = 0.0;
  for (std::int64_t k = 0; k < pieces.count(); ++k) {
    flops += piece_flops(pieces.shape(k), 1.0, 8.0, 8.0, k > 0 || with_initial,
                         k + 1 < pieces.count() || with_final);
  }
  return flops;
}

double diagonal_ssm_backward_flops(std::int64_t batch, std::int64_t channels, std::int64_t length,
                                   std::int64_t modes, bool with_initial, bool with_final,
                                   std::int64_t piece_length) {
  const Pieces pieces({batch, channels, length, modes}, piece_length, Device::cpu);
  double flops = 0.0;
  for (std::int64_t k = 0; k < pieces.count(); ++k) {
    const bool first = k == 0;
    const bool last = k + 1 == pieces.count();
    flops +=
        piece_flops(pieces.shape(k), 2.0, 16.0, 16.0, !first || with_initial, !last || with_final);
    // The recomputed final state of every piece but the last.
    if (!last) {
      flops += piece_flops(pieces.shape(k), 0.0, 0.0, 8.0, false, true);
    }
  }
  return flops;
}

}  // namespace longseq
