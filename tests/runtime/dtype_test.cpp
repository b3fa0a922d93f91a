#include "runtime/dtype.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "runtime/error.h"

namespace longseq {
namespace {

TEST(DType, SizesAndNames) {
  EXPECT_EQ(dtype_size(DType::f32), 4u);
  EXPECT_EQ(dtype_size(DType::bf16), 2u);
  EXPECT_EQ(dtype_size(DType::f64), 8u);
  EXPECT_EQ(parse_dtype("bf16"), DType::bf16);
  EXPECT_EQ(parse_dtype(dtype_name(DType::f16)), DType::f16);
  EXPECT_THROW(parse_dtype("fp8"), UserError);
}

TEST(DType, BFloat16RoundsToNearestEven) {
  EXPECT_EQ(to_bfloat16(1.0f).bits, 0x3f80);
  EXPECT_EQ(to_float(to_bfloat16(-2.5f)), -2.5f);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1.0).
  EXPECT_EQ(to_float(to_bfloat16(1.0f + 0.00390625f)), 1.0f);
  // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties to even (1 + 2^-6).
  EXPECT_EQ(to_float(to_bfloat16(1.0f + 3 * 0.00390625f)), 1.015625f);
  EXPECT_TRUE(std::isnan(to_float(to_bfloat16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_TRUE(std::isinf(to_float(to_bfloat16(std::numeric_limits<float>::infinity()))));
}

TEST(DType, HalfRoundTripsEveryFiniteValue) {
  for (std::uint32_t bits = 0; bits < 0x10000; ++bits) {
    const Half value{static_cast<std::uint16_t>(bits)};
    const float f = to_float(value);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(to_float(to_half(f))));
      continue;
    }
    ASSERT_EQ(to_half(f).bits, value.bits) << "bits " << bits;
  }
}

TEST(DType, HalfRoundsAndSaturates) {
  EXPECT_EQ(to_float(to_half(65504.0f)), 65504.0f);
  EXPECT_TRUE(std::isinf(to_float(to_half(65520.0f))));
  EXPECT_EQ(to_float(to_half(65519.0f)), 65504.0f);
  EXPECT_EQ(to_float(to_half(1.0f + 0.00048828125f)), 1.0f);  // halfway 1 and 1 + 2^-10: even
  EXPECT_EQ(to_float(to_half(5.9604644775390625e-8f)),
            5.9604644775390625e-8f);  // smallest subnormal
  EXPECT_EQ(to_float(to_half(2.0e-8f)), 0.0f);
}

}  // namespace
}  // namespace longseq
