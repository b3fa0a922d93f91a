// The S4 kernel on CUDA (kernels/s4.h): C~ = C (I - Abar^L) per channel on the host in double
// (a dense N x N power, tiny next to the sums), then one thread per (channel, frequency k <= L/2)
// evaluates the generating function by Cauchy sums (kernels/common/s4_math.h, fp32), and one
// batched cuFFT complex-to-real inverse of length L gives K (scaled by 1/L).
#include <cufft.h>

#include <cmath>
#include <vector>

#include "kernels/backends.h"
#include "kernels/common/s4_math.h"
#include "kernels/cuda/real_fft_plan.cuh"
#include "kernels/s4_system.h"
#include "runtime/cuda/check.h"
#include "runtime/cuda/resources.h"

namespace longseq::cuda {

namespace {

// modes[h, m] = (lambda, p, b, c~) as 8 floats.
__global__ void cauchy_spectrum(const float* log_dt, const float* modes, long long channels,
                                long long count, long long length, cufftComplex* spectrum) {
  const long long spectrum_length = length / 2 + 1;
  const long long index = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (index >= channels * spectrum_length) {
    return;
  }
  const long long h = index / spectrum_length;
  const long long k = index % spectrum_length;
  const float angle = -6.28318530717958647692f * static_cast<float>(k) / static_cast<float>(length);
  const float* channel = modes + h * count * 8;
  const auto load = [channel](long long m, S4Complex<float>& lambda, S4Complex<float>& p,
                              S4Complex<float>& b, S4Complex<float>& c) {
    const float* v = channel + m * 8;
    lambda = {v[0], v[1]};
    p = {v[2], v[3]};
    b = {v[4], v[5]};
    c = {v[6], v[7]};
  };
  const S4Complex<float> value = s4_generating_function(S4Complex<float>{cosf(angle), sinf(angle)},
                                                        expf(log_dt[h]), count, load);
  const float scale = 1.0f / static_cast<float>(length);
  spectrum[index] = {value.re * scale, value.im * scale};
}

}  // namespace

void s4_kernel(ComputeContext& context, const S4Parameters& parameters, const Tensor& kernel) {
  const std::int64_t channels = parameters.channels();
  const std::int64_t count = parameters.modes();
  const std::int64_t length = kernel.size(1);
  const cudaStream_t stream = context.cuda().stream();
  const S4Parameters host{parameters.log_dt.to(Device::cpu), parameters.lambda.to(Device::cpu),
                          parameters.p.to(Device::cpu),      parameters.b.to(Device::cpu),
                          parameters.c.to(Device::cpu),      parameters.d.to(Device::cpu)};
  const Tensor modes = Tensor::empty({channels, count, 8}, DType::f32);
  for (std::int64_t h = 0; h < channels; ++h) {
    const S4Discrete system(s4_channel(host, h));
    const std::vector<S4Value> c_tilde = system.truncated_c(length);
    for (std::int64_t m = 0; m < count; ++m) {
      float* v = modes.data<float>() + (h * count + m) * 8;
      const S4Channel& channel = system.channel();
      const S4Value values[4] = {channel.lambda[m], channel.p[m], channel.b[m], c_tilde[m]};
      for (int i = 0; i < 4; ++i) {
        v[2 * i] = static_cast<float>(values[i].real());
        v[2 * i + 1] = static_cast<float>(values[i].imag());
      }
    }
  }
  const Tensor device_modes = modes.to(Device::cuda);
  const std::int64_t spectrum_length = length / 2 + 1;
  const Tensor spectrum = Tensor::empty({channels, spectrum_length, 2}, DType::f32, Device::cuda);
  const long long threads = channels * spectrum_length;
  constexpr int kBlock = 128;
  cauchy_spectrum<<<static_cast<unsigned>((threads + kBlock - 1) / kBlock), kBlock, 0, stream>>>(
      parameters.log_dt.data<float>(), device_modes.data<float>(), channels, count, length,
      reinterpret_cast<cufftComplex*>(spectrum.data<float>()));
  CUDA_CHECK_LAUNCH();
  const RealFftPlan plan(length, channels, RealFftPlan::Direction::inverse, stream);
  plan.inverse(reinterpret_cast<cufftComplex*>(spectrum.data<float>()), kernel.data<float>());
  context.synchronize();
}

}  // namespace longseq::cuda
