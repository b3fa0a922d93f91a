#include "kernels/random.h"

#include "kernels/backends.h"
#include "kernels/tensor_checks.h"

namespace longseq {

namespace {

void fill(ComputeContext& context, const char* op, const Tensor& tensor, RandomStream random,
          RandomDistribution distribution, float a, float b) {
  check_contiguous(op, "the tensor", tensor);
  LONGSEQ_CHECK(is_fp32_bf16_or_fp16(tensor.dtype()),
                "[{}] fills fp32, bf16 or fp16 tensors, got {}", op, tensor.describe());
  if (tensor.device() == Device::cpu) {
    cpu::random_fill(context, tensor, random.seed, random.stream, distribution, a, b);
  } else {
    cuda::random_fill(context, tensor, random.seed, random.stream, distribution, a, b);
  }
}

}  // namespace

void fill_uniform(ComputeContext& context, const Tensor& tensor, RandomStream random, float low,
                  float high) {
  fill(context, "fill_uniform", tensor, random, RandomDistribution::uniform, low, high);
}

void fill_normal(ComputeContext& context, const Tensor& tensor, RandomStream random, float mean,
                 float stddev) {
  fill(context, "fill_normal", tensor, random, RandomDistribution::normal, mean, stddev);
}

}  // namespace longseq
