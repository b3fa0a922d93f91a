#include "kernels/backends.h"
#include "kernels/common/random_fill.h"
#include "runtime/cuda/resources.h"

namespace longseq::cuda {

namespace {

template <typename Element>
__global__ void random_fill_kernel(Element* values, std::int64_t count, std::uint64_t seed,
                                   std::uint64_t stream, RandomDistribution distribution, float a,
                                   float b) {
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += step) {
    store_element(
        random_fill_value(distribution, seed, stream, static_cast<std::uint64_t>(i), a, b),
        values + i);
  }
}

template <typename Element>
void launch(ComputeContext& context, const Tensor& tensor, std::uint64_t seed, std::uint64_t stream,
            RandomDistribution distribution, float a, float b) {
  const std::int64_t count = tensor.numel();
  if (count == 0) {
    return;
  }
  constexpr int kThreads = 256;
  const int blocks =
      static_cast<int>(std::min<std::int64_t>((count + kThreads - 1) / kThreads, 4096));
  random_fill_kernel<<<blocks, kThreads, 0, context.cuda().stream()>>>(
      static_cast<Element*>(tensor.raw_data()), count, seed, stream, distribution, a, b);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void random_fill(ComputeContext& context, const Tensor& tensor, std::uint64_t seed,
                 std::uint64_t stream, RandomDistribution distribution, float a, float b) {
  switch (tensor.dtype()) {
    case DType::f32:
      return launch<float>(context, tensor, seed, stream, distribution, a, b);
    case DType::bf16:
      return launch<BFloat16>(context, tensor, seed, stream, distribution, a, b);
    case DType::f16:
      return launch<Half>(context, tensor, seed, stream, distribution, a, b);
    default:
      LONGSEQ_CHECK(false, "[random_fill] unsupported dtype {}", dtype_name(tensor.dtype()));
  }
}

}  // namespace longseq::cuda
