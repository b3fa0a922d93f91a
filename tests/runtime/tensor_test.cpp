#include "runtime/tensor.h"

#include <gtest/gtest.h>

namespace longseq {
namespace {

Tensor iota(const Shape& shape) {
  Tensor t = Tensor::empty(shape, DType::f32);
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    t.data<float>()[i] = static_cast<float>(i);
  }
  return t;
}

TEST(Tensor, ShapeStridesAndContiguity) {
  const Tensor t = iota({2, 3, 4});
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.strides(), (Shape{12, 4, 1}));
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.size(-1), 4);
  EXPECT_EQ(t.describe(), "(2, 3, 4) fp32 cpu");
}

TEST(Tensor, SliceIsAViewAndContiguousCopies) {
  const Tensor t = iota({2, 3, 4});
  const Tensor middle = t.slice(1, 1, 3);  // (2, 2, 4)
  EXPECT_FALSE(middle.is_contiguous());
  middle.data<float>()[0] = -1.0f;  // first element of the view is t[0, 1, 0]
  EXPECT_EQ(t.data<float>()[4], -1.0f);
  const Tensor packed = middle.contiguous();
  EXPECT_TRUE(packed.is_contiguous());
  const float expected[] = {-1, 5, 6, 7, 8, 9, 10, 11, 16, 17, 18, 19, 20, 21, 22, 23};
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(packed.data<float>()[i], expected[i]) << i;
  }
  // A leading-dimension slice of a contiguous tensor stays contiguous.
  EXPECT_TRUE(t.slice(0, 1, 2).is_contiguous());
}

TEST(Tensor, ReshapeAndCloneShareOrCopy) {
  const Tensor t = iota({2, 6});
  const Tensor r = t.reshape({3, 4});
  r.data<float>()[0] = 100;
  EXPECT_EQ(t.data<float>()[0], 100);
  const Tensor c = t.clone();
  c.data<float>()[0] = 5;
  EXPECT_EQ(t.data<float>()[0], 100);
  EXPECT_THROW((void)t.reshape({5}), Error);
  EXPECT_THROW((void)t.slice(1, 2, 7), Error);
}

TEST(Tensor, DTypeConversionRoundTrips) {
  const Tensor t = Tensor::from_vector({1.0f, -2.5f, 0.15625f, 3.0f}, {2, 2});
  const Tensor back = t.to(DType::bf16).to(DType::f64).to(DType::f32);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(back.data<float>()[i], t.data<float>()[i]);
  }
  const std::vector<double> as_double = to_double_vector(t.to(DType::f16));
  EXPECT_EQ(as_double[1], -2.5);
  EXPECT_THROW((void)t.data<double>(), Error);
}

TEST(Tensor, ZerosAndCopyFrom) {
  const Tensor z = Tensor::zeros({3, 3}, DType::f64);
  for (int i = 0; i < 9; ++i) {
    EXPECT_EQ(z.data<double>()[i], 0.0);
  }
  const Tensor source = iota({3, 3});
  const Tensor destination = Tensor::empty({3, 3}, DType::f32);
  destination.copy_from(source);
  EXPECT_EQ(destination.data<float>()[8], 8.0f);
  EXPECT_THROW(destination.copy_from(iota({9})), Error);
}

}  // namespace
}  // namespace longseq
