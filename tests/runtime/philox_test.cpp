#include "runtime/philox.h"

#include <gtest/gtest.h>

#include <cmath>

namespace longseq {
namespace {

// Known-answer vectors of Philox 4x32-10 published with the Random123 library
// (counter words c0..c3, key words k0, k1). Our mapping: c0,c1 = offset, c2,c3 = stream, k = seed.
TEST(Philox, MatchesPublishedKnownAnswers) {
  const PhiloxBlock zero = philox4x32(0, 0, 0);
  EXPECT_EQ(zero.word[0], 0x6627e8d5u);
  EXPECT_EQ(zero.word[1], 0xe169c58du);
  EXPECT_EQ(zero.word[2], 0xbc57ac4cu);
  EXPECT_EQ(zero.word[3], 0x9b00dbd8u);

  const PhiloxBlock ones = philox4x32(~0ull, ~0ull, ~0ull);
  EXPECT_EQ(ones.word[0], 0x408f276du);
  EXPECT_EQ(ones.word[1], 0x41c83b0eu);
  EXPECT_EQ(ones.word[2], 0xa20bc7c6u);
  EXPECT_EQ(ones.word[3], 0x6d5451fdu);

  const PhiloxBlock pi =
      philox4x32(0x299f31d0a4093822ull, 0x0370734413198a2eull, 0x85a308d3243f6a88ull);
  EXPECT_EQ(pi.word[0], 0xd16cfe09u);
  EXPECT_EQ(pi.word[1], 0x94fdccebu);
  EXPECT_EQ(pi.word[2], 0x5001e420u);
  EXPECT_EQ(pi.word[3], 0x24126ea1u);
}

TEST(Philox, StreamsAreReproducibleAndDistinct) {
  EXPECT_EQ(random_uniform(5, 1, 123), random_uniform(5, 1, 123));
  EXPECT_NE(random_uniform(5, 1, 123), random_uniform(5, 2, 123));
  EXPECT_NE(random_uniform(5, 1, 123), random_uniform(6, 1, 123));
}

TEST(Philox, UniformAndNormalMoments) {
  constexpr int kCount = 200000;
  double sum = 0, sum_squares = 0, normal_sum = 0, normal_squares = 0;
  float low = 1, high = 0;
  for (int i = 0; i < kCount; ++i) {
    const float u = random_uniform(42, 3, i);
    low = std::min(low, u);
    high = std::max(high, u);
    sum += u;
    sum_squares += u * u;
    const double z = random_normal(42, 4, i);
    normal_sum += z;
    normal_squares += z * z;
  }
  EXPECT_GT(low, 0.0f);
  EXPECT_LE(high, 1.0f);
  // Mean 1/2 +- 4 sigma (sigma = sqrt(1/12 / n)); variance 1/12.
  EXPECT_NEAR(sum / kCount, 0.5, 4 * std::sqrt(1.0 / 12 / kCount));
  EXPECT_NEAR(sum_squares / kCount - 0.25, 1.0 / 12, 2e-3);
  EXPECT_NEAR(normal_sum / kCount, 0.0, 4 / std::sqrt(double(kCount)));
  EXPECT_NEAR(normal_squares / kCount, 1.0, 0.02);
}

}  // namespace
}  // namespace longseq
