// Counter-based random streams: Philox 4x32-10 (Salmon et al., "Parallel random numbers: as easy as
// 1, 2, 3"). The numbers depend only on (seed, stream, offset), so every rank and every device
// draws the same values for the same counter without sharing any state.
#pragma once

#include <cmath>
#include <cstdint>

#include "runtime/host_device.h"

namespace longseq {

struct PhiloxBlock {
  std::uint32_t word[4];
};

LONGSEQ_HOST_DEVICE void philox_multiply(std::uint32_t a, std::uint32_t b, std::uint32_t& high,
                                         std::uint32_t& low) {
  const std::uint64_t product = static_cast<std::uint64_t>(a) * b;
  high = static_cast<std::uint32_t>(product >> 32);
  low = static_cast<std::uint32_t>(product);
}

// Four 32-bit words for counter (offset, stream) under key seed.
LONGSEQ_HOST_DEVICE PhiloxBlock philox4x32(std::uint64_t seed, std::uint64_t stream,
                                           std::uint64_t offset) {
  std::uint32_t c0 = static_cast<std::uint32_t>(offset);
  std::uint32_t c1 = static_cast<std::uint32_t>(offset >> 32);
  std::uint32_t c2 = static_cast<std::uint32_t>(stream);
  std::uint32_t c3 = static_cast<std::uint32_t>(stream >> 32);
  std::uint32_t k0 = static_cast<std::uint32_t>(seed);
  std::uint32_t k1 = static_cast<std::uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    std::uint32_t high0, low0, high1, low1;
    philox_multiply(0xD2511F53u, c0, high0, low0);
    philox_multiply(0xCD9E8D57u, c2, high1, low1);
    const std::uint32_t n0 = high1 ^ c1 ^ k0;
    const std::uint32_t n1 = low1;
    const std::uint32_t n2 = high0 ^ c3 ^ k1;
    const std::uint32_t n3 = low0;
    c0 = n0;
    c1 = n1;
    c2 = n2;
    c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return PhiloxBlock{{c0, c1, c2, c3}};
}

// Uniform in (0, 1]: never 0, so log() is safe.
LONGSEQ_HOST_DEVICE float philox_uniform(std::uint32_t bits) {
  return (static_cast<float>(bits >> 8) + 1.0f) * (1.0f / 16777216.0f);
}

// The index-th uniform of a stream: each Philox block gives four.
LONGSEQ_HOST_DEVICE float random_uniform(std::uint64_t seed, std::uint64_t stream,
                                         std::uint64_t index) {
  const PhiloxBlock block = philox4x32(seed, stream, index / 4);
  return philox_uniform(block.word[index % 4]);
}

// The index-th standard normal of a stream (Box-Muller on the two uniforms of a pair).
LONGSEQ_HOST_DEVICE float random_normal(std::uint64_t seed, std::uint64_t stream,
                                        std::uint64_t index) {
  const PhiloxBlock block = philox4x32(seed, stream, index / 2);
  const int pair = static_cast<int>(index % 2) * 2;
  const float radius = sqrtf(-2.0f * logf(philox_uniform(block.word[pair])));
  const float angle = 6.28318530717958647692f * philox_uniform(block.word[pair + 1]);
  return radius * cosf(angle);
}

}  // namespace longseq
