#include "models/gss_block.h"

#include <algorithm>
#include <cmath>

#include "kernels/activation.h"
#include "kernels/gemm.h"
#include "models/axis_swap.h"
#include "parallel/diagonal_ssm_parallel.h"
#include "runtime/timer.h"

namespace longseq {

namespace {

// The paper's widths: an expansion of 4, and a hidden width of a quarter of the model width (256
// at its width 1024), at most 256.
constexpr std::int64_t kMaxHidden = 256;
constexpr std::int64_t kHiddenDivisor = 4;
constexpr std::int64_t kExpansion = 4;
// The weights draw from their own key, apart from the DSS initialisation's streams of `seed`.
constexpr std::uint64_t kWeightKey = 0x6753535F626C6F63ULL;

// Indices of the block's own parameters in its ParameterSet (the DSS ones follow).
enum Parameter : std::size_t {
  kNormGain,
  kNormBias,
  kWv,
  kWu,
  kUNormGain,
  kUNormBias,
  kWc,
  kWo,
};

float fan_in_stddev(std::int64_t fan_in) {
  return static_cast<float>(1.0 / std::sqrt(static_cast<double>(fan_in)));
}

void add_stats(DistributedAttentionStats& into, const DistributedAttentionStats& from) {
  into.bytes_sent += from.bytes_sent;
  into.compute_seconds += from.compute_seconds;
  into.communication_seconds += from.communication_seconds;
  into.exposed_communication_seconds += from.exposed_communication_seconds;
  into.blocks_computed += from.blocks_computed;
  into.blocks_skipped += from.blocks_skipped;
}

}  // namespace

GssBlockShape GssBlockShape::of(std::int64_t batch, std::int64_t width, std::int64_t modes) {
  return {batch, width, kExpansion * width,
          std::clamp<std::int64_t>(width / kHiddenDivisor, 1, kMaxHidden), modes};
}

GssBlock::GssBlock(const GssBlockShape& shape, std::uint64_t seed, StateScanStrategy strategy)
    : shape_(shape), parameters_(seed ^ kWeightKey), strategy_(strategy) {
  const std::int64_t e = shape.width;
  const std::int64_t f = shape.expanded;
  const std::int64_t h = shape.hidden;
  norm_gain_ = parameters_.constant("norm_gain", {e}, 1.0f);
  norm_bias_ = parameters_.constant("norm_bias", {e}, 0.0f);
  w_v_ = parameters_.normal("w_v", {e, f}, fan_in_stddev(e));
  w_u_ = parameters_.normal("w_u", {e, h}, fan_in_stddev(e));
  u_norm_gain_ = parameters_.constant("u_norm_gain", {h}, 1.0f);
  u_norm_bias_ = parameters_.constant("u_norm_bias", {h}, 0.0f);
  w_c_ = parameters_.normal("w_c", {h, f}, fan_in_stddev(h));
  w_o_ = parameters_.normal("w_o", {f, e}, fan_in_stddev(f));
  ssm_ = make_dss_parameters(h, shape.modes, seed, 1.0);
  ssm_gradients_ = zeros_like(ssm_);
  parameters_.adopt("ssm_lambda", ssm_.lambda, ssm_gradients_.lambda);
  parameters_.adopt("ssm_b", ssm_.b, ssm_gradients_.b);
  parameters_.adopt("ssm_c", ssm_.c, ssm_gradients_.c);
  parameters_.adopt("ssm_d", ssm_.d, ssm_gradients_.d);
}

void GssBlock::forward(ShardContext& context, const Tensor& x, const Tensor& out) {
  ComputeContext& compute = context.compute;
  const int rank = context.sequence_group.rank();
  const std::int64_t b = shape_.batch;
  const std::int64_t s = context.layout.shard_length();
  const std::int64_t rows = b * s;
  const std::int64_t h = shape_.hidden;
  LONGSEQ_CHECK(x.shape() == (Shape{b, s, shape_.width}) && out.shape() == x.shape(),
                "[gss_block] x {} and out {} must be (B, S, E) = ({}, {}, {})", x.describe(),
                out.describe(), b, s, shape_.width);
  stats_ = {};
  x_ = x;
  const Tensor x_rows = x.reshape({rows, shape_.width});
  normed_ = Tensor::empty({rows, shape_.width}, DType::f32);
  x_norm_.forward(compute, x_rows, norm_gain_, norm_bias_, normed_);

  v_pre_ = Tensor::empty({rows, shape_.expanded}, DType::f32);
  gemm(compute, normed_, false, w_v_, false, v_pre_);
  v_ = Tensor::empty(v_pre_.shape(), DType::f32);
  gelu_forward(compute, v_pre_, v_);

  u_pre_ = Tensor::empty({rows, h}, DType::f32);
  gemm(compute, normed_, false, w_u_, false, u_pre_);
  u_gelu_ = Tensor::empty(u_pre_.shape(), DType::f32);
  gelu_forward(compute, u_pre_, u_gelu_);
  const Tensor u = Tensor::empty({b, s, h}, DType::f32);
  u_norm_.forward(compute, u_gelu_, u_norm_gain_, u_norm_bias_, u.reshape({rows, h}));
  // Padding positions are no tokens: nothing of theirs enters the sequence layer.
  zero_padding_positions(context.layout, rank, u);
  u_channels_ = Tensor::empty({b, h, s}, DType::f32);
  swap_middle_axes(u, u_channels_);

  const Tensor y_channels = Tensor::empty({b, h, s}, DType::f32);
  DistributedAttentionStats ssm_stats;
  distributed_diagonal_ssm_forward(compute, context.sequence_group, context.layout,
                                   {DiagonalSsmKind::dss, strategy_}, ssm_, u_channels_, y_channels,
                                   &ssm_stats);
  add_stats(stats_, ssm_stats);
  y_ = Tensor::empty({b, s, h}, DType::f32);
  swap_middle_axes(y_channels, y_);
  y_ = y_.reshape({rows, h});

  gate_in_ = Tensor::empty({rows, shape_.expanded}, DType::f32);
  gemm(compute, y_, false, w_c_, false, gate_in_);
  const Tensor gate = Tensor::empty(gate_in_.shape(), DType::f32);
  multiply(gate_in_, v_, gate);
  const Tensor out_rows = out.reshape({rows, shape_.width});
  out_rows.copy_from(x_rows);
  gemm(compute, gate, false, w_o_, false, out_rows, 1.0f, 1.0f);
  zero_padding_positions(context.layout, rank, out);
}

void GssBlock::backward(ShardContext& context, const Tensor& grad_out, const Tensor& grad_x) {
  LONGSEQ_CHECK(x_.defined() && gate_in_.defined(), "[gss_block] backward before forward");
  ComputeContext& compute = context.compute;
  const int rank = context.sequence_group.rank();
  const std::int64_t b = shape_.batch;
  const std::int64_t s = context.layout.shard_length();
  const std::int64_t rows = b * s;
  const std::int64_t e = shape_.width;
  const std::int64_t f = shape_.expanded;
  const std::int64_t h = shape_.hidden;
  LONGSEQ_CHECK(grad_out.shape() == x_.shape() && grad_x.shape() == x_.shape(),
                "[gss_block] grad_out {} and grad_x {} must match x {}", grad_out.describe(),
                grad_x.describe(), x_.describe());
  stats_ = {};
  const ParameterSet& p = parameters_;
  // Padding positions take no part: their output gradients are dropped.
  const Tensor d_out = without_padding(context.layout, rank, grad_out).reshape({rows, e});

  // o = gate W_o + x, gate = gate_in * v, gate_in = y W_c.
  const Tensor gate = Tensor::empty({rows, f}, DType::f32);
  multiply(gate_in_, v_, gate);
  gemm(compute, gate, true, d_out, false, p.gradient(kWo));
  const Tensor d_gate = Tensor::empty({rows, f}, DType::f32);
  gemm(compute, d_out, false, w_o_, true, d_gate);
  const Tensor d_gate_in = Tensor::empty({rows, f}, DType::f32);
  multiply(d_gate, v_, d_gate_in);
  const Tensor d_v = Tensor::empty({rows, f}, DType::f32);
  multiply(d_gate, gate_in_, d_v);
  gemm(compute, y_, true, d_gate_in, false, p.gradient(kWc));
  const Tensor d_y = Tensor::empty({b, s, h}, DType::f32);
  gemm(compute, d_gate_in, false, w_c_, true, d_y.reshape({rows, h}));

  // The sequence layer, on (B, H, S).
  const Tensor d_y_channels = Tensor::empty({b, h, s}, DType::f32);
  swap_middle_axes(d_y, d_y_channels);
  const Tensor d_u_channels = Tensor::empty({b, h, s}, DType::f32);
  DistributedAttentionStats ssm_stats;
  distributed_diagonal_ssm_backward(compute, context.sequence_group, context.layout,
                                    {DiagonalSsmKind::dss, strategy_}, ssm_, u_channels_,
                                    d_y_channels, d_u_channels, ssm_gradients_, &ssm_stats);
  add_stats(stats_, ssm_stats);
  const Tensor d_u = Tensor::empty({b, s, h}, DType::f32);
  swap_middle_axes(d_u_channels, d_u);
  zero_padding_positions(context.layout, rank, d_u);

  // u = LN(GELU(a W_u)), v = GELU(a W_v).
  const Tensor d_u_gelu = Tensor::empty({rows, h}, DType::f32);
  u_norm_.backward(compute, d_u.reshape({rows, h}), u_gelu_, u_norm_gain_, d_u_gelu,
                   p.gradient(kUNormGain), p.gradient(kUNormBias));
  const Tensor d_u_pre = Tensor::empty({rows, h}, DType::f32);
  gelu_backward(compute, d_u_gelu, u_pre_, d_u_pre);
  const Tensor d_v_pre = Tensor::empty({rows, f}, DType::f32);
  gelu_backward(compute, d_v, v_pre_, d_v_pre);
  gemm(compute, normed_, true, d_v_pre, false, p.gradient(kWv));
  gemm(compute, normed_, true, d_u_pre, false, p.gradient(kWu));
  const Tensor d_normed = Tensor::empty({rows, e}, DType::f32);
  gemm(compute, d_v_pre, false, w_v_, true, d_normed);
  gemm(compute, d_u_pre, false, w_u_, true, d_normed, 1.0f, 1.0f);

  // a = LN(x), plus the shortcut.
  const Tensor grad_x_rows = grad_x.reshape({rows, e});
  x_norm_.backward(compute, d_normed, x_.reshape({rows, e}), norm_gain_, grad_x_rows,
                   p.gradient(kNormGain), p.gradient(kNormBias));
  add_into(d_out, grad_x_rows);
  zero_padding_positions(context.layout, rank, grad_x);

  const WallTimer timer;
  parameters_.all_reduce_gradients(context.sequence_group);
  stats_.communication_seconds += timer.seconds();
  stats_.exposed_communication_seconds += timer.seconds();
}

double GssBlock::forward_flops(std::int64_t length) const {
  const auto rows = static_cast<double>(shape_.batch * length);
  const auto e = static_cast<double>(shape_.width);
  const auto f = static_cast<double>(shape_.expanded);
  const auto h = static_cast<double>(shape_.hidden);
  return 2.0 * rows * (e * f + e * h + h * f + f * e) +
         diagonal_ssm_forward_flops(shape_.batch, shape_.hidden, length, shape_.modes, false,
                                    false);
}

double GssBlock::backward_flops(std::int64_t length) const {
  const double products =
      forward_flops(length) -
      diagonal_ssm_forward_flops(shape_.batch, shape_.hidden, length, shape_.modes, false, false);
  return 2.0 * products + diagonal_ssm_backward_flops(shape_.batch, shape_.hidden, length,
                                                      shape_.modes, false, false);
}

}  // namespace longseq
