#include "models/local_attention_block.h"

#include <cmath>
#include <tuple>
#include <utility>

#include "kernels/gemm.h"
#include "models/axis_swap.h"
#include "runtime/timer.h"

namespace longseq {

namespace {

// The weights draw from their own key, apart from the GSS block's.
constexpr std::uint64_t kWeightKey = 0x6C6F63616C617474ULL;

enum Parameter : std::size_t { kNormGain, kNormBias, kWq, kWk, kWv, kWo };

}  // namespace

LocalAttentionBlock::LocalAttentionBlock(const LocalAttentionBlockShape& shape, std::uint64_t seed)
    : shape_(shape), parameters_(seed ^ kWeightKey) {
  config_.chunk = shape.chunk;
  const std::int64_t e = shape.width();
  const auto stddev = static_cast<float>(1.0 / std::sqrt(static_cast<double>(e)));
  norm_gain_ = parameters_.constant("attention_norm_gain", {e}, 1.0f);
  norm_bias_ = parameters_.constant("attention_norm_bias", {e}, 0.0f);
  w_q_ = parameters_.normal("attention_w_q", {e, e}, stddev);
  w_k_ = parameters_.normal("attention_w_k", {e, e}, stddev);
  w_v_ = parameters_.normal("attention_w_v", {e, e}, stddev);
  w_o_ = parameters_.normal("attention_w_o", {e, e}, stddev);
}

void LocalAttentionBlock::forward(ShardContext& context, const Tensor& x, const Tensor& out) {
  ComputeContext& compute = context.compute;
  const std::int64_t b = shape_.batch;
  const std::int64_t s = context.layout.shard_length();
  const std::int64_t rows = b * s;
  const std::int64_t e = shape_.width();
  const Shape heads_shape{b, shape_.heads, s, shape_.head_dim};
  LONGSEQ_CHECK(x.shape() == (Shape{b, s, e}) && out.shape() == x.shape(),
                "[local_attention_block] x {} and out {} must be (B, S, E) = ({}, {}, {})",
                x.describe(), out.describe(), b, s, e);
  x_ = x;
  const Tensor x_rows = x.reshape({rows, e});
  normed_ = Tensor::empty({rows, e}, DType::f32);
  norm_.forward(compute, x_rows, norm_gain_, norm_bias_, normed_);
  const Tensor projected = Tensor::empty({b, s, shape_.heads, shape_.head_dim}, DType::f32);
  for (const auto& [weight, heads] : {std::pair{w_q_, &q_}, {w_k_, &k_}, {w_v_, &v_}}) {
    gemm(compute, normed_, false, weight, false, projected.reshape({rows, e}));
    *heads = Tensor::empty(heads_shape, DType::f32);
    swap_middle_axes(projected, *heads);
  }
  attended_ = Tensor::empty(heads_shape, DType::f32);
  lse_ = Tensor::empty({b, shape_.heads, s}, DType::f32);
  distributed_local_attention_forward(compute, context.sequence_group, context.layout, config_, q_,
                                      k_, v_, attended_, lse_, &stats_);
  attended_rows_ = Tensor::empty({b, s, shape_.heads, shape_.head_dim}, DType::f32);
  swap_middle_axes(attended_, attended_rows_);
  attended_rows_ = attended_rows_.reshape({rows, e});
  const Tensor out_rows = out.reshape({rows, e});
  out_rows.copy_from(x_rows);
  gemm(compute, attended_rows_, false, w_o_, false, out_rows, 1.0f, 1.0f);
  zero_padding_positions(context.layout, context.sequence_group.rank(), out);
}

void LocalAttentionBlock::backward(ShardContext& context, const Tensor& grad_out,
                                   const Tensor& grad_x) {
  LONGSEQ_CHECK(attended_rows_.defined() && x_.defined(),
                "[local_attention_block] backward before forward");
  ComputeContext& compute = context.compute;
  const int rank = context.sequence_group.rank();
  const std::int64_t b = shape_.batch;
  const std::int64_t s = context.layout.shard_length();
  const std::int64_t rows = b * s;
  const std::int64_t e = shape_.width();
  const Shape heads_shape{b, shape_.heads, s, shape_.head_dim};
  const Shape rows_shape{b, s, shape_.heads, shape_.head_dim};
  const ParameterSet& p = parameters_;
  const Tensor d_out = without_padding(context.layout, rank, grad_out).reshape({rows, e});

  gemm(compute, attended_rows_, true, d_out, false, p.gradient(kWo));
  const Tensor d_attended_rows = Tensor::empty(rows_shape, DType::f32);
  gemm(compute, d_out, false, w_o_, true, d_attended_rows.reshape({rows, e}));
  const Tensor d_attended = Tensor::empty(heads_shape, DType::f32);
  swap_middle_axes(d_attended_rows, d_attended);
  const Tensor d_q = Tensor::empty(heads_shape, DType::f32);
  const Tensor d_k = Tensor::empty(heads_shape, DType::f32);
  const Tensor d_v = Tensor::empty(heads_shape, DType::f32);
  distributed_local_attention_backward(compute, context.sequence_group, context.layout, config_, q_,
                                       k_, v_, attended_, lse_, d_attended, d_q, d_k, d_v, &stats_);

  const Tensor d_normed = Tensor::empty({rows, e}, DType::f32);
  const Tensor d_projected = Tensor::empty(rows_shape, DType::f32);
  float accumulate = 0.0f;
  for (const auto& [d_heads, weight, index] :
       {std::tuple{d_q, w_q_, kWq}, {d_k, w_k_, kWk}, {d_v, w_v_, kWv}}) {
    swap_middle_axes(d_heads, d_projected);
    const Tensor d_projected_rows = d_projected.reshape({rows, e});
    gemm(compute, normed_, true, d_projected_rows, false, p.gradient(index));
    gemm(compute, d_projected_rows, false, weight, true, d_normed, 1.0f, accumulate);
    accumulate = 1.0f;
  }
  const Tensor grad_x_rows = grad_x.reshape({rows, e});
  norm_.backward(compute, d_normed, x_.reshape({rows, e}), norm_gain_, grad_x_rows,
                 p.gradient(kNormGain), p.gradient(kNormBias));
  add_into(d_out, grad_x_rows);
  zero_padding_positions(context.layout, rank, grad_x);

  const WallTimer timer;
  parameters_.all_reduce_gradients(context.sequence_group);
  stats_.communication_seconds += timer.seconds();
  stats_.exposed_communication_seconds += timer.seconds();
}

double LocalAttentionBlock::forward_flops(std::int64_t length) const {
  const auto e = static_cast<double>(shape_.width());
  return 2.0 * static_cast<double>(shape_.batch * length) * 4.0 * e * e +
         local_attention_forward_flops(shape_.batch, shape_.heads, length, shape_.head_dim,
                                       shape_.chunk);
}

double LocalAttentionBlock::backward_flops(std::int64_t length) const {
  const double attention = local_attention_forward_flops(shape_.batch, shape_.heads, length,
                                                         shape_.head_dim, shape_.chunk);
  return 2.0 * (forward_flops(length) - attention) + 2.5 * attention;
}

}  // namespace longseq
