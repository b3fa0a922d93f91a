// A batched 1-D cuFFT plan for real signals (RAII): `batch` contiguous signals of length L, each
// with its L / 2 + 1 complex coefficients, bound to a stream. The one FFT handle of the CUDA
// kernels (Toeplitz products, the S4 kernel's inverse transform).
#pragma once

#include <cuda_runtime.h>
#include <cufft.h>

#include <cstdint>

#include "runtime/cuda/check.h"

namespace longseq::cuda {

class RealFftPlan {
 public:
  enum class Direction : std::uint8_t { forward, inverse };

  RealFftPlan(std::int64_t length, std::int64_t batch, Direction direction, cudaStream_t stream) {
    int n = static_cast<int>(length);
    CUFFT_CHECK(cufftPlanMany(&plan_, 1, &n, nullptr, 1, 0, nullptr, 1, 0,
                              direction == Direction::inverse ? CUFFT_C2R : CUFFT_R2C,
                              static_cast<int>(batch)));
    created_ = true;
    CUFFT_CHECK(cufftSetStream(plan_, stream));
  }
  ~RealFftPlan() {
    if (created_) {
      cufftDestroy(plan_);  // errors at destruction cannot be reported
    }
  }
  RealFftPlan(const RealFftPlan&) = delete;
  RealFftPlan& operator=(const RealFftPlan&) = delete;

  void forward(float* real, cufftComplex* spectrum) const {
    CUFFT_CHECK(cufftExecR2C(plan_, real, spectrum));
  }
  // Unscaled: L times the inverse transform.
  void inverse(cufftComplex* spectrum, float* real) const {
    CUFFT_CHECK(cufftExecC2R(plan_, spectrum, real));
  }

 private:
  cufftHandle plan_{};
  bool created_ = false;
};

}  // namespace longseq::cuda
