// Tensors filled from the seeded counter-based streams of runtime/philox.h: element i (row-major)
// of a fill with (seed, stream) is a function of (seed, stream, i) only, so every rank and every
// device produces the same tensor. Uniform fills are bit-identical on CPU and CUDA; normal fills
// go through logf/cosf, whose CUDA and host versions may differ in the last bit.
// Tensors: contiguous fp32, bf16 or fp16 (values are drawn in fp32, then rounded).
#pragma once

#include <cstdint>

#include "runtime/context.h"
#include "runtime/tensor.h"

namespace longseq {

struct RandomStream {
  std::uint64_t seed = 0;
  std::uint64_t stream = 0;
};

// Values in [low, high).
void fill_uniform(ComputeContext& context, const Tensor& tensor, RandomStream random, float low,
                  float high);
void fill_normal(ComputeContext& context, const Tensor& tensor, RandomStream random, float mean,
                 float stddev);

}  // namespace longseq
