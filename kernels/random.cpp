#include "kernels/random.h"

#include "kernels/backends.h"

namespace longseq {

namespace {

void fill(ComputeContext& context, const char* op, const Tensor& tensor, RandomStream random,
          RandomDistribution distribution, float a, float b) {
  LONGSEQ_CHECK(tensor.is_contiguous(), "[{}] the tensor must be contiguous, got {}", op, tensor.describe());
  LONGSEQ_CHECK(tensor.dtype() == DType::f32 || tensor.dtype() == DType::bf16 || tensor.dtype() == DType::f16,
                "[{}] fills fp32, bf16 or fp16 tensors, got {}", op, tensor.describe());
  if (tensor.device() == Device::cpu) {
    cpu::random_fill(context, tensor, random.seed, random.stream, distribution, a, b);
  } else {
    cuda::random_fill(context, tensor, random.seed, random.stream, distribution, a, b);
  }
}

}  // namespace

void fill_uniform(ComputeContext& context, const Tensor& tensor, RandomStream random, float low, float high) {
  fill(context, "fill_uniform", tensor, random, RandomDistribution::uniform, low, high);
}

void fill_normal(ComputeContext& context, const Tensor& tensor, RandomStream random, float mean, float stddev) {
  fill(context, "fill_normal", tensor, random, RandomDistribution::normal, mean, stddev);
}

}  // namespace longseq
