// Google Benchmark micro-benchmarks of the kernels, with FLOP rates as counters. The yardstick
// (gemm: OpenBLAS sgemm on the CPU, cuBLAS on the GPU) runs in the same binary, so ratios are
// taken within one run. Links only runtime and kernels, so it runs on a GPU machine without MPI.
//
// How to extend: write a function taking (benchmark::State&, Device, DType) and register it with
// the shapes it should run at in register_benchmarks().
#include <benchmark/benchmark.h>

#include <string>

#include "kernels/activation.h"
#include "kernels/attention.h"
#include "kernels/gemm.h"
#include "kernels/norm.h"
#include "runtime/philox.h"
#include "runtime/tensor.h"

namespace longseq {

namespace {

Tensor random_tensor(const Shape& shape, std::uint64_t stream, DType dtype, Device device) {
  Tensor values = Tensor::empty(shape, DType::f32);
  float* data = values.data<float>();
  for (std::int64_t i = 0; i < values.numel(); ++i) {
    data[i] = 2.0f * random_uniform(11, stream, static_cast<std::uint64_t>(i)) - 1.0f;
  }
  return values.to(dtype).to(device);
}

bool skip_without_device(benchmark::State& state, Device device) {
  if (device == Device::cuda && cuda_device_count() == 0) {
    state.SkipWithError(("no GPU: " + cuda_unavailable_reason()).c_str());
    return true;
  }
  return false;
}

void set_flop_rate(benchmark::State& state, double flops_per_iteration) {
  state.counters["FLOP/s"] =
      benchmark::Counter(flops_per_iteration, benchmark::Counter::kIsIterationInvariantRate);
}

void gemm_benchmark(benchmark::State& state, Device device, DType dtype) {
  if (skip_without_device(state, device)) return;
  const std::int64_t n = state.range(0);
  ComputeContext context;
  const Tensor a = random_tensor({n, n}, 1, dtype, device);
  const Tensor b = random_tensor({n, n}, 2, dtype, device);
  const Tensor c = Tensor::empty({n, n}, dtype, device);
  for (auto _ : state) {
    gemm(context, a, false, b, false, c);
    context.synchronize();
  }
  set_flop_rate(state, 2.0 * n * n * static_cast<double>(n));
}

// range(0) = N, range(1) = head dim, range(2) = causal, range(3) = 1 for backward; B x H = 8.
void attention_benchmark(benchmark::State& state, Device device, DType dtype, bool flash) {
  if (skip_without_device(state, device)) return;
  const std::int64_t n = state.range(0);
  const std::int64_t d = state.range(1);
  AttentionOptions options;
  options.causal = state.range(2) != 0;
  const bool backward = state.range(3) != 0;
  ComputeContext context;
  const Shape shape{1, 8, n, d};
  const Tensor q = random_tensor(shape, 1, dtype, device);
  const Tensor k = random_tensor(shape, 2, dtype, device);
  const Tensor v = random_tensor(shape, 3, dtype, device);
  const Tensor grad_out = random_tensor(shape, 4, dtype, device);
  const Tensor out = Tensor::empty(shape, dtype, device);
  const Tensor lse = Tensor::empty({1, 8, n}, DType::f32, device);
  const Tensor grad_q = Tensor::empty(shape, dtype, device);
  const Tensor grad_k = Tensor::empty(shape, dtype, device);
  const Tensor grad_v = Tensor::empty(shape, dtype, device);
  const auto forward = flash ? flash_attention_forward : softmax_attention_forward;
  const auto backward_pass = flash ? flash_attention_backward : softmax_attention_backward;
  forward(context, q, k, v, options, out, lse);
  for (auto _ : state) {
    if (backward) {
      backward_pass(context, q, k, v, out, lse, grad_out, options, grad_q, grad_k, grad_v);
    } else {
      forward(context, q, k, v, options, out, lse);
    }
    context.synchronize();
  }
  const AttentionShape geometry = attention_shape("benchmark", q, k, v, options);
  set_flop_rate(state,
                backward ? attention_backward_flops(geometry) : attention_forward_flops(geometry));
}

void layer_norm_benchmark(benchmark::State& state, Device device, DType dtype) {
  if (skip_without_device(state, device)) return;
  const std::int64_t rows = state.range(0);
  const std::int64_t columns = state.range(1);
  ComputeContext context;
  const Tensor x = random_tensor({rows, columns}, 1, dtype, device);
  const Tensor gamma = random_tensor({columns}, 2, DType::f32, device);
  const Tensor beta = random_tensor({columns}, 3, DType::f32, device);
  const Tensor y = Tensor::empty({rows, columns}, dtype, device);
  const Tensor mean = Tensor::empty({rows}, DType::f32, device);
  const Tensor rstd = Tensor::empty({rows}, DType::f32, device);
  for (auto _ : state) {
    layer_norm_forward(context, x, gamma, beta, 1e-5f, y, mean, rstd);
    context.synchronize();
  }
  state.counters["bytes/s"] = benchmark::Counter(static_cast<double>(2 * x.bytes()),
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

void gelu_benchmark(benchmark::State& state, Device device, DType dtype) {
  if (skip_without_device(state, device)) return;
  const std::int64_t n = state.range(0);
  ComputeContext context;
  const Tensor x = random_tensor({n}, 1, dtype, device);
  const Tensor y = Tensor::empty({n}, dtype, device);
  for (auto _ : state) {
    gelu_forward(context, x, y);
    context.synchronize();
  }
  state.counters["bytes/s"] = benchmark::Counter(static_cast<double>(2 * x.bytes()),
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

void register_benchmarks() {
  struct Backend {
    const char* name;
    Device device;
    DType dtype;
  };
  const Backend backends[] = {{"cpu/fp32", Device::cpu, DType::f32},
                              {"cuda/bf16", Device::cuda, DType::bf16}};
  for (const Backend& backend : backends) {
    const std::string suffix = std::string("/") + backend.name;
    const bool gpu = backend.device == Device::cuda;
    benchmark::RegisterBenchmark(("gemm" + suffix).c_str(), gemm_benchmark, backend.device,
                                 backend.dtype)
        ->Arg(gpu ? 8192 : 2048)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    for (const bool flash : {false, true}) {
      auto* registered = benchmark::RegisterBenchmark(
          ((flash ? "flash_attention" : "softmax_attention") + suffix).c_str(), attention_benchmark,
          backend.device, backend.dtype, flash);
      registered->ArgNames({"N", "D", "causal", "backward"})
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
      for (const std::int64_t n :
           gpu ? std::vector<std::int64_t>{4096, 16384} : std::vector<std::int64_t>{1024, 4096}) {
        if (!flash && n > 4096) continue;  // the materialised baseline needs N^2 memory
        for (const std::int64_t backward : {0, 1}) {
          registered->Args({n, gpu ? 128 : 64, 0, backward});
        }
      }
    }
    benchmark::RegisterBenchmark(("layer_norm" + suffix).c_str(), layer_norm_benchmark,
                                 backend.device, backend.dtype)
        ->Args({8192, 1024})
        ->UseRealTime();
    benchmark::RegisterBenchmark(("gelu" + suffix).c_str(), gelu_benchmark, backend.device,
                                 backend.dtype)
        ->Arg(1 << 22)
        ->UseRealTime();
  }
}

}  // namespace

}  // namespace longseq

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("cpu", longseq::cpu_description());
  benchmark::AddCustomContext("gpu", longseq::cuda_device_description());
  benchmark::AddCustomContext("blas", longseq::cpu_blas_description());
  longseq::register_benchmarks();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
