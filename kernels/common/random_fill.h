// The value of element i of a random fill (kernels/random.h), shared by the CPU and CUDA fills.
#pragma once

#include <cstdint>

#include "runtime/dtype.h"
#include "runtime/host_device.h"
#include "runtime/philox.h"

namespace longseq {

enum class RandomDistribution : std::uint8_t { uniform, normal };

// Uniform: low + (high - low) * (1 - u) with u in (0, 1], so the value lies in [low, high).
// Normal: mean + stddev * z.
LONGSEQ_HOST_DEVICE float random_fill_value(RandomDistribution distribution, std::uint64_t seed,
                                            std::uint64_t stream, std::uint64_t index, float a,
                                            float b) {
  if (distribution == RandomDistribution::uniform) {
    return a + (b - a) * (1.0f - random_uniform(seed, stream, index));
  }
  return a + b * random_normal(seed, stream, index);
}

LONGSEQ_HOST_DEVICE void store_element(float value, float* destination) { *destination = value; }
LONGSEQ_HOST_DEVICE void store_element(float value, BFloat16* destination) {
  *destination = to_bfloat16(value);
}
LONGSEQ_HOST_DEVICE void store_element(float value, Half* destination) {
  *destination = to_half(value);
}

}  // namespace longseq
