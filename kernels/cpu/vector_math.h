// SIMD vectors for the CPU kernels through GCC/Clang vector extensions: the compiler emits AVX-512,
// AVX2 or SSE code for the same source, so there is no intrinsic code path per instruction set.
#pragma once

#include <cstdint>
#include <cstring>

namespace longseq::cpu {

#if defined(__AVX512F__)
inline constexpr int kVectorWidth = 16;
#else
inline constexpr int kVectorWidth = 8;
#endif

using FloatVector = float __attribute__((vector_size(kVectorWidth * sizeof(float))));
using IntVector = std::int32_t __attribute__((vector_size(kVectorWidth * sizeof(std::int32_t))));

// Unaligned loads and stores: tensor rows carry no alignment promise.
inline FloatVector load_vector(const float* source) {
  FloatVector value;
  std::memcpy(&value, source, sizeof(value));
  return value;
}

inline void store_vector(float* destination, FloatVector value) {
  std::memcpy(destination, &value, sizeof(value));
}

// x - (+0) is x for every x, -0 included, so the compiler reduces this to one broadcast.
inline FloatVector broadcast(float value) { return value - FloatVector{}; }

inline FloatVector max_vector(FloatVector a, FloatVector b) { return a > b ? a : b; }

inline float horizontal_max(FloatVector value) {
  float result = value[0];
  for (int lane = 1; lane < kVectorWidth; ++lane) {
    result = result > value[lane] ? result : value[lane];
  }
  return result;
}

inline float horizontal_sum(FloatVector value) {
  float result = 0.0f;
  for (int lane = 0; lane < kVectorWidth; ++lane) {
    result += value[lane];
  }
  return result;
}

// 2^x per lane, relative error about 2e-7 (degree-6 polynomial on [-1/2, 1/2]). Lanes below -125,
// -inf included, give exactly 0, so masked scores vanish; inputs are never above +126 here (they
// are scores minus their running maximum) and are clamped there.
inline FloatVector exp2_vector(FloatVector x) {
  // Adding 1.5 * 2^23 rounds to the nearest integer and leaves it in the low mantissa bits.
  constexpr float kRoundingShift = 12582912.0f;
  const IntVector underflow = x < -125.0f;
  const FloatVector clamped =
      x > 126.0f ? broadcast(126.0f) : (x < -125.0f ? broadcast(-125.0f) : x);
  const FloatVector shifted = clamped + kRoundingShift;
  const FloatVector whole = shifted - kRoundingShift;
  const FloatVector fraction = clamped - whole;  // in [-1/2, 1/2]
  // Taylor coefficients of 2^f = e^(f ln 2): (ln 2)^i / i!.
  FloatVector poly = broadcast(1.5403530393381606e-4f);
  poly = poly * fraction + 1.3333558146428443e-3f;
  poly = poly * fraction + 9.6181291076284772e-3f;
  poly = poly * fraction + 5.5504108664821580e-2f;
  poly = poly * fraction + 2.4022650695910071e-1f;
  poly = poly * fraction + 6.9314718055994531e-1f;
  poly = poly * fraction + 1.0f;
  IntVector exponent_bits;
  std::memcpy(&exponent_bits, &shifted, sizeof(exponent_bits));
  IntVector bits;
  std::memcpy(&bits, &poly, sizeof(bits));
  bits += exponent_bits << 23;  // the integer part sits in the low bits; the shift drops the rest
  bits &= ~underflow;
  FloatVector result;
  std::memcpy(&result, &bits, sizeof(result));
  return result;
}

}  // namespace longseq::cpu
