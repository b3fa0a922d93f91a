#include "models/block_rows.h"

#include "kernels/norm.h"
#include "parallel/sequence_rows.h"
#include "runtime/error.h"

namespace longseq {

void zero_padding_positions(const SequenceLayout& layout, int rank, const Tensor& shard) {
  for (const LayoutRun& run : layout.runs(rank)) {
    if (run.length > run.valid_length) {
      fill_rows(SequenceRows::of(shard, 1), run.local_begin + run.valid_length,
                run.length - run.valid_length, 0.0f);
    }
  }
}

Tensor without_padding(const SequenceLayout& layout, int rank, const Tensor& shard) {
  if (layout.valid_length(rank) == layout.shard_length()) {
    return shard;
  }
  const Tensor copy = shard.clone();
  zero_padding_positions(layout, rank, copy);
  return copy;
}

void LayerNormRows::forward(ComputeContext& context, const Tensor& x, const Tensor& gain,
                            const Tensor& bias, const Tensor& y) {
  mean_ = Tensor::empty({x.size(0)}, DType::f32, x.device());
  rstd_ = Tensor::empty({x.size(0)}, DType::f32, x.device());
  layer_norm_forward(context, x, gain, bias, kEps, y, mean_, rstd_);
}

void LayerNormRows::backward(ComputeContext& context, const Tensor& grad_y, const Tensor& x,
                             const Tensor& gain, const Tensor& grad_x, const Tensor& grad_gain,
                             const Tensor& grad_bias) const {
  LONGSEQ_CHECK(mean_.defined() && mean_.numel() == x.size(0),
                "[layer_norm_rows] backward without a matching forward");
  layer_norm_backward(context, grad_y, x, gain, mean_, rstd_, grad_x, grad_gain, grad_bias);
}

void multiply(const Tensor& a, const Tensor& b, const Tensor& out) {
  LONGSEQ_CHECK(a.shape() == b.shape() && a.shape() == out.shape(),
                "[multiply] shapes {} {} {} differ", a.describe(), b.describe(), out.describe());
  const float* x = a.data<float>();
  const float* y = b.data<float>();
  float* z = out.data<float>();
  for (std::int64_t i = 0; i < out.numel(); ++i) {
    z[i] = x[i] * y[i];
  }
}

void add_into(const Tensor& from, const Tensor& into) {
  LONGSEQ_CHECK(from.shape() == into.shape(), "[add_into] shapes {} and {} differ", from.describe(),
                into.describe());
  const float* x = from.data<float>();
  float* y = into.data<float>();
  for (std::int64_t i = 0; i < into.numel(); ++i) {
    y[i] += x[i];
  }
}

}  // namespace longseq
