// What the blocks on a shard (B, S, C) share, with the sequence at dimension 1: padding positions
// (which must neither produce output nor leak into gradients), layer norm over rows with its
// saved statistics, and the elementwise products of gates.
#pragma once

#include <cstdint>

#include "parallel/sequence_layout.h"
#include "runtime/context.h"
#include "runtime/tensor.h"

namespace longseq {

// Sets the padding positions of a shard (B, S, ...) to zero.
void zero_padding_positions(const SequenceLayout& layout, int rank, const Tensor& shard);
// The shard with its padding positions zeroed: a copy when it has any, else the shard itself.
Tensor without_padding(const SequenceLayout& layout, int rank, const Tensor& shard);

// Layer norm over the last dimension of rows (R, C), keeping mean and rstd (R) for backward.
class LayerNormRows {
 public:
  static constexpr float kEps = 1e-5f;

  void forward(ComputeContext& context, const Tensor& x, const Tensor& gain, const Tensor& bias,
               const Tensor& y);
  // grad_gain and grad_bias are overwritten; x is the forward's input.
  void backward(ComputeContext& context, const Tensor& grad_y, const Tensor& x, const Tensor& gain,
                const Tensor& grad_x, const Tensor& grad_gain, const Tensor& grad_bias) const;

 private:
  Tensor mean_, rstd_;
};

// out = a * b elementwise (same shapes, contiguous fp32 CPU).
void multiply(const Tensor& a, const Tensor& b, const Tensor& out);
// into += from elementwise (same shapes, contiguous fp32 CPU).
void add_into(const Tensor& from, const Tensor& into);

}  // namespace longseq
