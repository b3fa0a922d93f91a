#include "kernels/s4.h"

#include <cmath>
#include <complex>
#include <numbers>

#include "kernels/backends.h"
#include "kernels/s4_system.h"
#include "kernels/tensor_checks.h"
#include "kernels/toeplitz.h"
#include "runtime/philox.h"

// LAPACK (bundled with OpenBLAS): eigen-decomposition of a complex Hermitian matrix.
extern "C" void zheev_(const char* jobz, const char* uplo, const int* n, std::complex<double>* a,
                       const int* lda, double* w, std::complex<double>* work, const int* lwork,
                       double* rwork, int* info, std::size_t jobz_length, std::size_t uplo_length);

namespace longseq {

namespace {

// Philox streams of the initialisation.
constexpr std::uint64_t kStreamC = 41;
constexpr std::uint64_t kStreamLogDt = 42;
constexpr std::uint64_t kStreamD = 43;

// Eigenvectors of the Hermitian matrix i K for K = S + I/2 (skew-symmetric): i K v = w v means
// S v = (-1/2 - i w) v. Returns the eigenvalues w (ascending) and the eigenvectors as columns
// (column-major, N x N).
std::pair<std::vector<double>, std::vector<std::complex<double>>> skew_eigenvectors(
    const HippoLegs& hippo) {
  const int n = static_cast<int>(hippo.size);
  std::vector<std::complex<double>> hermitian(static_cast<std::size_t>(n) * n);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j) {
      const double s = hippo.a[i * n + j] + hippo.p[i] * hippo.p[j] + (i == j ? 0.5 : 0.0);
      hermitian[static_cast<std::size_t>(j) * n + i] = {0.0, s};  // column-major i K
    }
  }
  std::vector<double> w(static_cast<std::size_t>(n));
  std::vector<double> rwork(static_cast<std::size_t>(std::max(1, 3 * n - 2)));
  int info = 0;
  int lwork = -1;
  std::complex<double> query;
  zheev_("V", "L", &n, hermitian.data(), &n, w.data(), &query, &lwork, rwork.data(), &info, 1, 1);
  lwork = static_cast<int>(query.real());
  std::vector<std::complex<double>> work(static_cast<std::size_t>(lwork));
  zheev_("V", "L", &n, hermitian.data(), &n, w.data(), work.data(), &lwork, rwork.data(), &info, 1,
         1);
  LONGSEQ_CHECK(info == 0, "[make_s4_parameters] zheev failed with info {}", info);
  return {w, hermitian};
}

}  // namespace

HippoLegs hippo_legs(std::int64_t size) {
  HippoLegs hippo;
  hippo.size = size;
  hippo.a.assign(static_cast<std::size_t>(size * size), 0.0);
  for (std::int64_t n = 0; n < size; ++n) {
    hippo.p.push_back(std::sqrt(static_cast<double>(n) + 0.5));
    hippo.b.push_back(std::sqrt(2.0 * static_cast<double>(n) + 1.0));
    for (std::int64_t k = 0; k <= n; ++k) {
      hippo.a[n * size + k] = n == k ? -(static_cast<double>(n) + 1.0)
                                     : -std::sqrt(2.0 * static_cast<double>(n) + 1.0) *
                                           std::sqrt(2.0 * static_cast<double>(k) + 1.0);
    }
  }
  return hippo;
}

S4Parameters make_s4_parameters(std::int64_t channels, std::int64_t state_size,
                                std::uint64_t seed) {
  LONGSEQ_REQUIRE(channels > 0 && state_size >= 2 && state_size % 2 == 0,
                  "[s4] needs channels > 0 and an even state size >= 2, got {} and {}", channels,
                  state_size);
  const std::int64_t modes = state_size / 2;
  const HippoLegs hippo = hippo_legs(state_size);
  const auto [w, vectors] = skew_eigenvectors(hippo);
  S4Parameters parameters{Tensor::empty({channels}, DType::f32),
                          Tensor::empty({channels, modes, 2}, DType::f32),
                          Tensor::empty({channels, modes, 2}, DType::f32),
                          Tensor::empty({channels, modes, 2}, DType::f32),
                          Tensor::empty({channels, modes, 2}, DType::f32),
                          Tensor::empty({channels}, DType::f32)};
  // Eigenvalues come in pairs +-w; ascending order puts the M with w < 0 (Im lambda > 0) first.
  std::vector<std::complex<double>> lambda, p, b;
  for (std::int64_t m = 0; m < modes; ++m) {
    lambda.emplace_back(-0.5, -w[m]);
    std::complex<double> pm, bm;
    for (std::int64_t n = 0; n < state_size; ++n) {
      const std::complex<double> v = std::conj(vectors[m * state_size + n]);
      pm += v * hippo.p[n];
      bm += v * hippo.b[n];
    }
    p.push_back(pm);
    b.push_back(bm);
  }
  const double log_low = std::log(1e-3);
  const double log_high = std::log(1e-1);
  const double c_scale = std::sqrt(0.5);
  for (std::int64_t h = 0; h < channels; ++h) {
    parameters.log_dt.data<float>()[h] =
        static_cast<float>(log_low + (log_high - log_low) * random_uniform(seed, kStreamLogDt, h));
    parameters.d.data<float>()[h] = random_normal(seed, kStreamD, h);
    for (std::int64_t m = 0; m < modes; ++m) {
      const std::int64_t at = 2 * (h * modes + m);
      const auto put = [at](const Tensor& tensor, std::complex<double> value) {
        tensor.data<float>()[at] = static_cast<float>(value.real());
        tensor.data<float>()[at + 1] = static_cast<float>(value.imag());
      };
      put(parameters.lambda, lambda[m]);
      put(parameters.p, p[m]);
      put(parameters.b, b[m]);
      put(parameters.c, {c_scale * random_normal(seed, kStreamC, at),
                         c_scale * random_normal(seed, kStreamC, at + 1)});
    }
  }
  return parameters;
}

S4Parameters zeros_like(const S4Parameters& parameters) {
  const auto zeros = [](const Tensor& t) {
    return Tensor::zeros(t.shape(), t.dtype(), t.device());
  };
  return {zeros(parameters.log_dt), zeros(parameters.lambda), zeros(parameters.p),
          zeros(parameters.b),      zeros(parameters.c),      zeros(parameters.d)};
}

void check_s4_parameters(const char* op, const S4Parameters& parameters, Device device) {
  LONGSEQ_CHECK(
      parameters.log_dt.defined() && parameters.log_dt.rank() == 1 && parameters.lambda.rank() == 3,
      "[{}] log_dt must be (H) and lambda (H, M, 2), got {} and {}", op,
      parameters.log_dt.describe(), parameters.lambda.describe());
  const std::int64_t h = parameters.channels();
  const std::int64_t m = parameters.modes();
  const DType dtype = parameters.log_dt.dtype();
  check_tensor(op, "log_dt", parameters.log_dt, {h}, dtype, device);
  check_tensor(op, "d", parameters.d, {h}, dtype, device);
  for (const auto& [name, tensor] :
       {std::pair{"lambda", parameters.lambda}, std::pair{"p", parameters.p},
        std::pair{"b", parameters.b}, std::pair{"c", parameters.c}}) {
    check_tensor(op, name, tensor, {h, m, 2}, dtype, device);
  }
}

void s4_kernel(ComputeContext& context, const S4Parameters& parameters, const Tensor& kernel) {
  constexpr const char* kOp = "s4_kernel";
  check_s4_parameters(kOp, parameters, kernel.device());
  LONGSEQ_CHECK(parameters.log_dt.dtype() == DType::f32, "[{}] fp32 parameters only", kOp);
  LONGSEQ_CHECK(kernel.rank() == 2 && kernel.size(1) >= 1, "[{}] kernel must be (H, L), got {}",
                kOp, kernel.describe());
  check_tensor(kOp, "kernel", kernel, {parameters.channels(), kernel.size(1)}, DType::f32,
               kernel.device());
  const auto run = kernel.device() == Device::cpu ? cpu::s4_kernel : cuda::s4_kernel;
  run(context, parameters, kernel);
}

void s4_kernel_backward(ComputeContext& context, const S4Parameters& parameters,
                        const Tensor& grad_kernel, const S4Parameters& grad_parameters) {
  constexpr const char* kOp = "s4_kernel_backward";
  check_s4_parameters(kOp, parameters, Device::cpu);
  check_s4_parameters(kOp, grad_parameters, Device::cpu);
  LONGSEQ_CHECK(grad_kernel.rank() == 2 && grad_kernel.size(0) == parameters.channels(),
                "[{}] grad_kernel must be (H, L), got {}", kOp, grad_kernel.describe());
  check_tensor(kOp, "grad_kernel", grad_kernel, grad_kernel.shape(), DType::f32, Device::cpu);
  const std::int64_t length = grad_kernel.size(1);
  // K_l is the impulse response y_l of the recurrence to u = (1, 0, 0, ...) from zero, minus
  // D at l = 0: the backward of that row, without the D term.
#pragma omp parallel for num_threads(context.cpu_threads()) schedule(dynamic, 1)
  for (std::int64_t h = 0; h < parameters.channels(); ++h) {
    S4Channel channel = s4_channel(parameters, h);
    channel.d = 0.0;
    const S4Discrete system(std::move(channel));
    std::vector<double> impulse(static_cast<std::size_t>(length));
    impulse[0] = 1.0;
    std::vector<double> grad_y(grad_kernel.data<float>() + h * length,
                               grad_kernel.data<float>() + (h + 1) * length);
    std::vector<double> grad_u(static_cast<std::size_t>(length));
    S4ChannelGradient gradient(parameters.modes());
    system.backward_row(length, impulse.data(), nullptr, grad_y.data(), nullptr, grad_u.data(),
                        nullptr, gradient);
    gradient.d = 0.0;
    system.add_parameter_gradients(gradient, grad_parameters, h);
  }
}

double s4_kernel_flops(std::int64_t channels, std::int64_t length, std::int64_t modes) {
  const double l = static_cast<double>(length);
  return static_cast<double>(channels) *
         (2.0 * (l / 2.0 + 1.0) * static_cast<double>(modes) * 40.0 +
          2.5 * l * std::log2(std::max(2.0, l)));
}

double s4_forward_flops(std::int64_t batch, std::int64_t channels, std::int64_t length,
                        std::int64_t modes) {
  return s4_kernel_flops(channels, length, modes) +
         toeplitz_product_flops(batch, channels, length, length, 1) +
         2.0 * static_cast<double>(batch * channels * length);
}

double s4_backward_flops(std::int64_t batch, std::int64_t channels, std::int64_t length,
                         std::int64_t modes) {
  const double n = 2.0 * static_cast<double>(modes);
  return static_cast<double>(batch * channels * length) *
         (2.0 * 24.0 * static_cast<double>(modes) + 4.0 * n * n);
}

}  // namespace longseq
