#include "suites/yardstick.h"

#include <vector>

#include "kernels/gemm.h"
#include "runtime/philox.h"
#include "runtime/tensor.h"
#include "runtime/timer.h"

namespace longseq {

namespace {

Tensor random_matrix(int n, std::uint64_t stream) {
  Tensor matrix = Tensor::empty({n, n}, DType::f32);
  float* values = matrix.data<float>();
  for (std::int64_t i = 0; i < matrix.numel(); ++i) {
    values[i] = random_uniform(7, stream, static_cast<std::uint64_t>(i)) - 0.5f;
  }
  return matrix;
}

}  // namespace

Yardstick measure_yardstick(ComputeContext& context, Device device, DType dtype, int n, int reps) {
  Yardstick yardstick;
  const bool gpu = device == Device::cuda;
  yardstick.n = n > 0 ? n : (gpu ? 8192 : 2048);
  // OpenBLAS sgemm on the CPU whatever the benchmark's dtype (the CPU kernels are fp32).
  const DType gemm_dtype = gpu ? dtype : DType::f32;
  yardstick.name = gpu ? (gemm_dtype == DType::bf16  ? "cuBLAS bf16 GEMM"
                          : gemm_dtype == DType::f16 ? "cuBLAS fp16 GEMM"
                                                     : "cuBLAS fp32 GEMM")
                       : "OpenBLAS sgemm";
  const Tensor a = random_matrix(yardstick.n, 1).to(gemm_dtype).to(device);
  const Tensor b = random_matrix(yardstick.n, 2).to(gemm_dtype).to(device);
  const Tensor c = Tensor::empty({yardstick.n, yardstick.n}, gemm_dtype, device);
  gemm(context, a, false, b, false, c);
  context.synchronize();
  std::vector<double> seconds;
  for (int rep = 0; rep < reps; ++rep) {
    WallTimer timer;
    gemm(context, a, false, b, false, c);
    context.synchronize();
    seconds.push_back(timer.seconds());
  }
  const double flops = 2.0 * yardstick.n * static_cast<double>(yardstick.n) * yardstick.n;
  yardstick.gflops = flops / summarize_timings(seconds).median_s * 1e-9;
  return yardstick;
}

Yardstick measure_shared_yardstick(ComputeContext& context, Communicator& world, Device device,
                                   DType dtype) {
  Yardstick yardstick;
  if (world.rank() == 0) {
    yardstick = measure_yardstick(context, device, dtype);
  } else {
    yardstick.name = device == Device::cuda ? "cuBLAS GEMM" : "OpenBLAS sgemm";
  }
  const Tensor value = Tensor::zeros({2}, DType::f64);
  value.data<double>()[0] = yardstick.gflops;
  value.data<double>()[1] = yardstick.n;
  world.broadcast(value, 0);
  yardstick.gflops = value.data<double>()[0];
  yardstick.n = static_cast<int>(value.data<double>()[1]);
  return yardstick;
}

}  // namespace longseq
