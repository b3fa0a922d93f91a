// GELU on CUDA: element-wise grid-stride kernels over the flattened tensor
// (kernels/common/gelu_math.h). fp32, bf16 or fp16 elements, computed in fp32.
#include <cstdint>

#include "kernels/backends.h"
#include "kernels/common/gelu_math.h"
#include "kernels/cuda/element.cuh"
#include "runtime/cuda/resources.h"

namespace longseq::cuda {

namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void __launch_bounds__(kThreads)
    gelu_forward_kernel(std::int64_t count, const T* x, T* y) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * kThreads;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < count;
       i += stride) {
    y[i] = element_from_float<T>(gelu(element_to_float(x[i])));
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    gelu_backward_kernel(std::int64_t count, const T* grad_y, const T* x, T* grad_x) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * kThreads;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < count;
       i += stride) {
    grad_x[i] = element_from_float<T>(element_to_float(grad_y[i]) *
                                      gelu_derivative(element_to_float(x[i])));
  }
}

}  // namespace

void gelu_forward(ComputeContext& context, const Tensor& x, const Tensor& y) {
  const std::int64_t count = x.numel();
  if (count == 0) {
    return;
  }
  const cudaStream_t stream = context.cuda().stream();
  dispatch_floating("gelu_forward", x.dtype(), [&](auto element) {
    using T = decltype(element);
    gelu_forward_kernel<T><<<grid_stride_blocks(count, kThreads), kThreads, 0, stream>>>(
        count, x.data<T>(), y.data<T>());
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
  dispatch_floating("gelu_backward", x.dtype(), [&](auto element) {
    using T = decltype(element);
    gelu_backward_kernel<T><<<grid_stride_blocks(count, kThreads), kThreads, 0, stream>>>(
        count, grad_y.data<T>(), x.data<T>(), grad_x.data<T>());
    CUDA_CHECK_LAUNCH();
  });
}

}  // namespace longseq::cuda
