// GELU on CUDA: element-wise grid-stride kernels over the flattened tensor
// (kernels/common/gelu_math.h). fp32, bf16 or fp16 elements, computed in fp32.
#include <algorithm>
#include <cstdint>

#include "kernels/backends.h"
#include "kernels/common/gelu_math.h"
#include "runtime/cuda/resources.h"

namespace longseq::cuda {

namespace {

constexpr int kThreads = 256;
// Enough blocks to fill any current GPU several times over; larger tensors loop in the kernel.
constexpr std::int64_t kMaxBlocks = 8192;

// Elements: fp32, or bf16 / fp16 as the runtime's bit-compatible structs.
__device__ __forceinline__ float load_float(float value) { return value; }
__device__ __forceinline__ float load_float(BFloat16 value) { return to_float(value); }
__device__ __forceinline__ float load_float(Half value) { return to_float(value); }
__device__ __forceinline__ void store_float(float& element, float value) { element = value; }
__device__ __forceinline__ void store_float(BFloat16& element, float value) {
  element = to_bfloat16(value);
}
__device__ __forceinline__ void store_float(Half& element, float value) {
  element = to_half(value);
}

template <typename Launch>
void with_element_type(const char* op, DType dtype, Launch&& launch) {
  switch (dtype) {
    case DType::f32:
      launch(float{});
      return;
    case DType::bf16:
      launch(BFloat16{});
      return;
    case DType::f16:
      launch(Half{});
      return;
    default:
      LONGSEQ_CHECK(false, "[{}] no CUDA kernel for {}", op, dtype_name(dtype));
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    gelu_forward_kernel(std::int64_t count, const T* x, T* y) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * kThreads;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < count;
       i += stride) {
    store_float(y[i], gelu(load_float(x[i])));
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    gelu_backward_kernel(std::int64_t count, const T* grad_y, const T* x, T* grad_x) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * kThreads;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < count;
       i += stride) {
    store_float(grad_x[i], load_float(grad_y[i]) * gelu_derivative(load_float(x[i])));
  }
}

unsigned int grid_blocks(std::int64_t count) {
  return static_cast<unsigned int>(std::min(kMaxBlocks, (count + kThreads - 1) / kThreads));
}

}  // namespace

void gelu_forward(ComputeContext& context, const Tensor& x, const Tensor& y) {
  const std::int64_t count = x.numel();
  if (count == 0) {
    return;
  }
  const cudaStream_t stream = context.cuda().stream();
  with_element_type("gelu_forward", x.dtype(), [&](auto element) {
    using T = decltype(element);
    gelu_forward_kernel<T>
        <<<grid_blocks(count), kThreads, 0, stream>>>(count, x.data<T>(), y.data<T>());
    CUDA_CHECK_LAUNCH();
  });
}

void gelu_backward(ComputeContext& context, const Tensor& grad_y, const Tensor& x,
                   const Tensor& grad_x) {
  const std::int64_t count = x.numel();
  if (count == 0) {
    return;
  }
  const cudaStream_t stream = context.cuda().stream();
  with_element_type("gelu_backward", x.dtype(), [&](auto element) {
    using T = decltype(element);
    gelu_backward_kernel<T><<<grid_blocks(count), kThreads, 0, stream>>>(
        count, grad_y.data<T>(), x.data<T>(), grad_x.data<T>());
    CUDA_CHECK_LAUNCH();
  });
}

}  // namespace longseq::cuda
