// S4 on one piece of a sequence, on the CPU (kernels/s4.h): the convolution mode through
// toeplitz_product, the state terms (incoming response, final state) and the backward through
// the DPLR recurrence of kernels/s4_system.h, in double per (batch row, channel).
#include <vector>

#include "kernels/s4.h"
#include "kernels/s4_system.h"
#include "kernels/tensor_checks.h"
#include "kernels/toeplitz.h"

namespace longseq {

namespace {

// u (B, H, L) fp32 CPU and the parameters; returns (B, H, L).
Shape checked_sequence(const char* op, const S4Parameters& parameters, const Tensor& u) {
  check_s4_parameters(op, parameters, Device::cpu);
  LONGSEQ_CHECK(u.rank() == 3 && u.size(1) == parameters.channels(),
                "[{}] u must be (B, {}, L), got {}", op, parameters.channels(), u.describe());
  check_tensor(op, "u", u, u.shape(), DType::f32, Device::cpu);
  return u.shape();
}

void check_state(const char* op, const char* name, const Tensor& state, const Shape& sequence,
                 std::int64_t modes) {
  if (state.defined()) {
    check_tensor(op, name, state, {sequence[0], sequence[1], modes, 2}, DType::f32, Device::cpu);
  }
}

std::vector<S4Value> load_state(const Tensor& state, std::int64_t row, std::int64_t modes) {
  std::vector<S4Value> x(static_cast<std::size_t>(modes));
  if (state.defined()) {
    const float* from = state.data<float>() + row * modes * 2;
    for (std::int64_t m = 0; m < modes; ++m) {
      x[m] = {from[2 * m], from[2 * m + 1]};
    }
  }
  return x;
}

void store_state(const std::vector<S4Value>& x, const Tensor& state, std::int64_t row) {
  const auto modes = static_cast<std::int64_t>(x.size());
  float* to = state.data<float>() + row * modes * 2;
  for (std::int64_t m = 0; m < modes; ++m) {
    to[2 * m] = static_cast<float>(x[m].real());
    to[2 * m + 1] = static_cast<float>(x[m].imag());
  }
}

}  // namespace

void s4_forward(ComputeContext& context, const S4Parameters& parameters, const Tensor& u,
                const Tensor& initial, const Tensor& y, const Tensor& final) {
  constexpr const char* kOp = "s4_forward";
  const Shape shape = checked_sequence(kOp, parameters, u);
  check_tensor(kOp, "y", y, shape, DType::f32, Device::cpu);
  const std::int64_t modes = parameters.modes();
  check_state(kOp, "initial", initial, shape, modes);
  check_state(kOp, "final", final, shape, modes);
  const std::int64_t batch = shape[0];
  const std::int64_t channels = shape[1];
  const std::int64_t length = shape[2];
  if (length > 0) {
    // t[h, (j - i) + L - 1] = K_{i-j} for j <= i.
    const Tensor kernel = Tensor::empty({channels, length}, DType::f32);
    s4_kernel(context, parameters, kernel);
    const Tensor t = Tensor::zeros({channels, 2 * length - 1}, DType::f32);
    for (std::int64_t h = 0; h < channels; ++h) {
      for (std::int64_t s = 0; s < length; ++s) {
        t.data<float>()[h * (2 * length - 1) + length - 1 - s] =
            kernel.data<float>()[h * length + s];
      }
    }
    toeplitz_product(context, t, u.reshape({batch, channels, length, 1}),
                     y.reshape({batch, channels, length, 1}));
  }
  const bool state_terms = initial.defined() || final.defined();
#pragma omp parallel for num_threads(context.cpu_threads()) schedule(dynamic, 1)
  for (std::int64_t row = 0; row < batch * channels; ++row) {
    const std::int64_t h = row % channels;
    const float* u_row = u.data<float>() + row * length;
    float* y_row = y.data<float>() + row * length;
    const double d = static_cast<double>(parameters.d.data<float>()[h]);
    for (std::int64_t l = 0; l < length; ++l) {
      y_row[l] += static_cast<float>(d * u_row[l]);
    }
    if (!state_terms) {
      continue;
    }
    const S4Discrete system(s4_channel(parameters, h));
    if (initial.defined()) {
      std::vector<S4Value> z = load_state(initial, row, modes);
      for (std::int64_t l = 0; l < length; ++l) {
        system.step(z.data());
        y_row[l] += static_cast<float>(system.readout(z.data()));
      }
    }
    if (final.defined()) {
      std::vector<S4Value> x = load_state(initial, row, modes);
      for (std::int64_t l = 0; l < length; ++l) {
        system.step(x.data());
        for (std::int64_t m = 0; m < modes; ++m) {
          x[m] += system.bbar()[m] * static_cast<double>(u_row[l]);
        }
      }
      store_state(x, final, row);
    }
  }
}

void s4_backward(ComputeContext& context, const S4Parameters& parameters, const Tensor& u,
                 const Tensor& initial, const Tensor& grad_y, const Tensor& grad_final,
                 const Tensor& grad_u, const Tensor& grad_initial,
                 const S4Parameters& grad_parameters) {
  constexpr const char* kOp = "s4_backward";
  const Shape shape = checked_sequence(kOp, parameters, u);
  check_tensor(kOp, "grad_y", grad_y, shape, DType::f32, Device::cpu);
  check_tensor(kOp, "grad_u", grad_u, shape, DType::f32, Device::cpu);
  check_s4_parameters(kOp, grad_parameters, Device::cpu);
  const std::int64_t modes = parameters.modes();
  check_state(kOp, "initial", initial, shape, modes);
  check_state(kOp, "grad_final", grad_final, shape, modes);
  check_state(kOp, "grad_initial", grad_initial, shape, modes);
  const std::int64_t batch = shape[0];
  const std::int64_t channels = shape[1];
  const std::int64_t length = shape[2];
#pragma omp parallel for num_threads(context.cpu_threads()) schedule(dynamic, 1)
  for (std::int64_t h = 0; h < channels; ++h) {
    const S4Discrete system(s4_channel(parameters, h));
    S4ChannelGradient gradient(modes);
    std::vector<double> u_row(static_cast<std::size_t>(length));
    std::vector<double> grad_y_row(static_cast<std::size_t>(length));
    std::vector<double> grad_u_row(static_cast<std::size_t>(length));
    std::vector<S4Value> grad_in(static_cast<std::size_t>(modes));
    for (std::int64_t b = 0; b < batch; ++b) {
      const std::int64_t row = b * channels + h;
      std::copy(u.data<float>() + row * length, u.data<float>() + (row + 1) * length,
                u_row.begin());
      std::copy(grad_y.data<float>() + row * length, grad_y.data<float>() + (row + 1) * length,
                grad_y_row.begin());
      const std::vector<S4Value> x_in = load_state(initial, row, modes);
      const std::vector<S4Value> grad_out = load_state(grad_final, row, modes);
      system.backward_row(length, u_row.data(), x_in.data(), grad_y_row.data(), grad_out.data(),
                          grad_u_row.data(), grad_in.data(), gradient);
      std::copy(grad_u_row.begin(), grad_u_row.end(), grad_u.data<float>() + row * length);
      if (grad_initial.defined()) {
        store_state(grad_in, grad_initial, row);
      }
    }
    system.add_parameter_gradients(gradient, grad_parameters, h);
  }
}

void s4_recurrence(ComputeContext& context, const S4Parameters& parameters, const Tensor& u,
                   const Tensor& state, const Tensor& y) {
  constexpr const char* kOp = "s4_recurrence";
  const Shape shape = checked_sequence(kOp, parameters, u);
  check_tensor(kOp, "y", y, shape, DType::f32, Device::cpu);
  LONGSEQ_CHECK(state.defined(), "[{}] needs a state to update", kOp);
  check_state(kOp, "state", state, shape, parameters.modes());
  const std::int64_t channels = shape[1];
  const std::int64_t length = shape[2];
#pragma omp parallel for num_threads(context.cpu_threads()) schedule(dynamic, 1)
  for (std::int64_t row = 0; row < shape[0] * channels; ++row) {
    const S4Discrete system(s4_channel(parameters, row % channels));
    std::vector<S4Value> x = load_state(state, row, parameters.modes());
    const float* u_row = u.data<float>() + row * length;
    for (std::int64_t l = 0; l < length; ++l) {
      system.step(x.data());
      for (std::int64_t m = 0; m < parameters.modes(); ++m) {
        x[m] += system.bbar()[m] * static_cast<double>(u_row[l]);
      }
      y.data<float>()[row * length + l] =
          static_cast<float>(system.readout(x.data()) + system.channel().d * u_row[l]);
    }
    store_state(x, state, row);
  }
}

void s4_transition(ComputeContext& context, const S4Parameters& parameters, std::int64_t length,
                   bool transposed, const Tensor& state) {
  constexpr const char* kOp = "s4_transition";
  check_s4_parameters(kOp, parameters, Device::cpu);
  const std::int64_t channels = parameters.channels();
  const std::int64_t modes = parameters.modes();
  const std::int64_t n = 2 * modes;
  LONGSEQ_CHECK(state.rank() == 4 && state.size(1) == channels, "[{}] state must be (B, {}, {}, 2)",
                kOp, channels, modes);
  check_tensor(kOp, "state", state, {state.size(0), channels, modes, 2}, DType::f32, Device::cpu);
  const std::int64_t batch = state.size(0);
#pragma omp parallel for num_threads(context.cpu_threads()) schedule(dynamic, 1)
  for (std::int64_t h = 0; h < channels; ++h) {
    const S4Discrete system(s4_channel(parameters, h));
    // Short pieces: `length` DPLR steps per row (O(B L M)) beat the dense power (O(N^3 log L)).
    if (batch * length * 32 <= n * n * n) {
      for (std::int64_t b = 0; b < batch; ++b) {
        const std::int64_t row = b * channels + h;
        std::vector<S4Value> x = load_state(state, row, modes);
        for (std::int64_t l = 0; l < length; ++l) {
          transposed ? system.adjoint_step(x.data()) : system.step(x.data());
        }
        store_state(x, state, row);
      }
      continue;
    }
    const std::vector<double> power = s4_matrix_power(system.dense_abar(), n, length);
    std::vector<double> x(static_cast<std::size_t>(n));
    for (std::int64_t b = 0; b < batch; ++b) {
      float* values = state.data<float>() + (b * channels + h) * n;
      // values hold (re, im) pairs; the real representation is [re...; im...].
      for (std::int64_t m = 0; m < modes; ++m) {
        x[m] = values[2 * m];
        x[modes + m] = values[2 * m + 1];
      }
      for (std::int64_t i = 0; i < n; ++i) {
        double sum = 0.0;
        for (std::int64_t j = 0; j < n; ++j) {
          sum += (transposed ? power[j * n + i] : power[i * n + j]) * x[j];
        }
        values[i < modes ? 2 * i : 2 * (i - modes) + 1] = static_cast<float>(sum);
      }
    }
  }
}

}  // namespace longseq
