#include "kernels/backends.h"
#include "kernels/common/random_fill.h"

namespace longseq::cpu {

namespace {

template <typename Element>
void fill_elements(ComputeContext& context, Element* values, std::int64_t count, std::uint64_t seed,
                   std::uint64_t stream, RandomDistribution distribution, float a, float b) {
#pragma omp parallel for schedule(static) num_threads(context.cpu_threads())
  for (std::int64_t i = 0; i < count; ++i) {
    store_element(
        random_fill_value(distribution, seed, stream, static_cast<std::uint64_t>(i), a, b),
        values + i);
  }
}

}  // namespace

void random_fill(ComputeContext& context, const Tensor& tensor, std::uint64_t seed,
                 std::uint64_t stream, RandomDistribution distribution, float a, float b) {
  switch (tensor.dtype()) {
    case DType::f32:
      return fill_elements(context, tensor.data<float>(), tensor.numel(), seed, stream,
                           distribution, a, b);
    case DType::bf16:
      return fill_elements(context, tensor.data<BFloat16>(), tensor.numel(), seed, stream,
                           distribution, a, b);
    case DType::f16:
      return fill_elements(context, tensor.data<Half>(), tensor.numel(), seed, stream, distribution,
                           a, b);
    default:
      LONGSEQ_CHECK(false, "[random_fill] unsupported dtype {}", dtype_name(tensor.dtype()));
  }
}

}  // namespace longseq::cpu
