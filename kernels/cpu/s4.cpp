// The S4 kernel on the CPU (kernels/s4.h): per channel, in double, C~ = C (I - Abar^L) by
// repeated squaring of the dense real Abar, then the generating function at z_k = exp(-2 pi i k/L)
// for k <= L/2 by Cauchy sums (kernels/common/s4_math.h), the rest by conjugate symmetry, and one
// inverse complex FFT (KISS FFT, any length) whose real part over L is K.
#include <kiss_fft.h>

#include <cmath>
#include <numbers>
#include <vector>

#include "kernels/backends.h"
#include "kernels/common/s4_math.h"
#include "kernels/s4_system.h"

namespace longseq::cpu {

namespace {

// One KISS FFT complex inverse-transform plan (RAII); plans hold scratch, one per thread.
class InverseFftPlan {
 public:
  explicit InverseFftPlan(std::int64_t length)
      : plan_(kiss_fft_alloc(static_cast<int>(length), 1, nullptr, nullptr)) {
    LONGSEQ_CHECK(plan_ != nullptr, "[s4_kernel] kiss_fft_alloc({}) failed", length);
  }
  ~InverseFftPlan() { kiss_fft_free(plan_); }
  InverseFftPlan(const InverseFftPlan&) = delete;
  InverseFftPlan& operator=(const InverseFftPlan&) = delete;

  // Unscaled: out_l = sum_k in_k exp(+2 pi i k l / L).
  void run(const kiss_fft_cpx* in, kiss_fft_cpx* out) const { kiss_fft(plan_, in, out); }

 private:
  kiss_fft_cfg plan_;
};

}  // namespace

void s4_kernel(ComputeContext& context, const S4Parameters& parameters, const Tensor& kernel) {
  const std::int64_t length = kernel.size(1);
  const std::int64_t modes = parameters.modes();
#pragma omp parallel num_threads(context.cpu_threads())
  {
    const InverseFftPlan plan(length);
    std::vector<kiss_fft_cpx> spectrum(static_cast<std::size_t>(length));
    std::vector<kiss_fft_cpx> values(static_cast<std::size_t>(length));
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t h = 0; h < parameters.channels(); ++h) {
      const S4Discrete system(s4_channel(parameters, h));
      const std::vector<S4Value> c_tilde = system.truncated_c(length);
      const S4Channel& channel = system.channel();
      const auto load = [&](long long m, S4Complex<double>& lambda, S4Complex<double>& p,
                            S4Complex<double>& b, S4Complex<double>& c) {
        lambda = {channel.lambda[m].real(), channel.lambda[m].imag()};
        p = {channel.p[m].real(), channel.p[m].imag()};
        b = {channel.b[m].real(), channel.b[m].imag()};
        c = {c_tilde[m].real(), c_tilde[m].imag()};
      };
      for (std::int64_t k = 0; k <= length / 2; ++k) {
        const double angle =
            -2.0 * std::numbers::pi * static_cast<double>(k) / static_cast<double>(length);
        const S4Complex<double> value = s4_generating_function(
            S4Complex<double>{std::cos(angle), std::sin(angle)}, channel.dt, modes, load);
        spectrum[k] = {static_cast<float>(value.re), static_cast<float>(value.im)};
        if (k > 0 && k < length - k) {
          spectrum[length - k] = {static_cast<float>(value.re), static_cast<float>(-value.im)};
        }
      }
      plan.run(spectrum.data(), values.data());
      float* out = kernel.data<float>() + h * length;
      const float scale = 1.0f / static_cast<float>(length);
      for (std::int64_t l = 0; l < length; ++l) {
        out[l] = values[l].r * scale;
      }
    }
  }
}

}  // namespace longseq::cpu
