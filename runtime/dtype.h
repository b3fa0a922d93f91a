// Element types of tensors, and the bf16 / fp16 bit conversions shared by host and device code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "runtime/host_device.h"

namespace longseq {

enum class DType : std::uint8_t { f32, f64, bf16, f16, i32, u8 };

std::size_t dtype_size(DType dtype);
std::string_view dtype_name(DType dtype);
// Parses "fp32"/"f32", "fp64"/"f64", "bf16", "fp16"/"f16", "i32", "u8"; throws UserError otherwise.
DType parse_dtype(std::string_view name);

// Storage types for the 16-bit floats on the host: the same bits as CUDA's __nv_bfloat16 / __half.
struct BFloat16 {
  std::uint16_t bits;
};
struct Half {
  std::uint16_t bits;
};

LONGSEQ_HOST_DEVICE std::uint32_t float_bits(float value) {
  std::uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

LONGSEQ_HOST_DEVICE float bits_float(std::uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

// Round to nearest even; NaN stays NaN.
LONGSEQ_HOST_DEVICE BFloat16 to_bfloat16(float value) {
  std::uint32_t bits = float_bits(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) {
    return BFloat16{static_cast<std::uint16_t>((bits >> 16) | 0x40u)};
  }
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return BFloat16{static_cast<std::uint16_t>(bits >> 16)};
}

LONGSEQ_HOST_DEVICE float to_float(BFloat16 value) {
  return bits_float(static_cast<std::uint32_t>(value.bits) << 16);
}

// IEEE binary16, round to nearest even, with subnormals and overflow to infinity.
LONGSEQ_HOST_DEVICE Half to_half(float value) {
  const std::uint32_t bits = float_bits(value);
  const std::uint32_t sign = (bits >> 16) & 0x8000u;
  const std::uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) {
    return Half{static_cast<std::uint16_t>(sign | 0x7e00u)};
  }
  if (magnitude >= 0x477ff000u) {  // rounds to >= 65520: infinity
    return Half{static_cast<std::uint16_t>(sign | 0x7c00u)};
  }
  if (magnitude < 0x38800000u) {                               // below 2^-14: subnormal or zero
    const float scaled = bits_float(magnitude) * 16777216.0f;  // * 2^24: exact
    auto units = static_cast<std::uint32_t>(scaled);
    const float rest = scaled - static_cast<float>(units);
    if (rest > 0.5f || (rest == 0.5f && (units & 1u) != 0)) {
      ++units;
    }
    return Half{static_cast<std::uint16_t>(sign | units)};
  }
  std::uint32_t rebased = magnitude - 0x38000000u;  // exponent bias 127 -> 15
  rebased += 0xfffu + ((rebased >> 13) & 1u);
  return Half{static_cast<std::uint16_t>(sign | (rebased >> 13))};
}

LONGSEQ_HOST_DEVICE float to_float(Half value) {
  const std::uint32_t sign = static_cast<std::uint32_t>(value.bits & 0x8000u) << 16;
  const std::uint32_t exponent = (value.bits >> 10) & 0x1fu;
  const std::uint32_t mantissa = value.bits & 0x3ffu;
  if (exponent == 0) {
    const float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-8f;  // 2^-24
    return sign != 0 ? -magnitude : magnitude;
  }
  if (exponent == 31) {
    return bits_float(sign | 0x7f800000u | (mantissa << 13));
  }
  return bits_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

// Maps a C++ element type to its DType (used by Tensor::data<T>() to check the caller's type).
template <typename T>
struct DTypeOf;
template <>
struct DTypeOf<float> {
  static constexpr DType value = DType::f32;
};
template <>
struct DTypeOf<double> {
  static constexpr DType value = DType::f64;
};
template <>
struct DTypeOf<BFloat16> {
  static constexpr DType value = DType::bf16;
};
template <>
struct DTypeOf<Half> {
  static constexpr DType value = DType::f16;
};
template <>
struct DTypeOf<std::int32_t> {
  static constexpr DType value = DType::i32;
};
template <>
struct DTypeOf<std::uint8_t> {
  static constexpr DType value = DType::u8;
};

}  // namespace longseq
