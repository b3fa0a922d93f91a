// The pointwise parts of rpe attention on the CPU (kernels/rpe_attention.h): position weights,
// the feature-times-value columns that the Toeplitz products take, their contraction with the
// features of the other side, and the readout. Each is one pass over (B, H, N) rows; the math is
// shared with CUDA (kernels/common/rpe_attention_math.h).
#include <algorithm>
#include <cstdint>
#include <limits>

#include "kernels/backends.h"
#include "kernels/common/rpe_attention_math.h"
#include "kernels/rpe_attention_backends.h"

namespace longseq::cpu {

namespace {

// The largest b in use of head h (the shift m).
float weight_shift(const float* b, std::int64_t entries, bool causal) {
  const std::int64_t length = (entries + 1) / 2;
  float shift = -std::numeric_limits<float>::infinity();
  for (std::int64_t e = 0; e < entries; ++e) {
    if (rpe_offset_used(rpe_offset(e, length), causal)) {
      shift = std::max(shift, b[e]);
    }
  }
  return shift;
}

// Value e of row i of v' (the appended 1 past the stored columns).
float value_at(const RpeColumnBlock& block, const float* values, std::int64_t stored,
               std::int64_t e) {
  return block.append_one && e == stored ? 1.0f : values[e];
}

}  // namespace

void rpe_position_weights(ComputeContext& context, const Tensor& b, bool causal, std::int64_t first,
                          const Tensor& weights) {
  const std::int64_t heads = b.size(0);
  const std::int64_t entries = b.size(1);
  const std::int64_t length = (entries + 1) / 2;
  const std::int64_t count = weights.size(1);
#pragma omp parallel for num_threads(context.cpu_threads()) schedule(static)
  for (std::int64_t h = 0; h < heads; ++h) {
    const float* row = b.data<float>() + h * entries;
    const float shift = weight_shift(row, entries, causal);
    float* out = weights.data<float>() + h * count;
    for (std::int64_t e = 0; e < count; ++e) {
      const bool used = rpe_offset_used(rpe_offset(first + e, length), causal);
      out[e] = used ? rpe_weight(row[first + e], shift) : 0.0f;
    }
  }
}

void rpe_position_weights_backward(ComputeContext& context, const Tensor& weights,
                                   const Tensor& grad_weights, std::int64_t first,
                                   const Tensor& grad_b) {
  const std::int64_t heads = weights.size(0);
  const std::int64_t count = weights.size(1);
#pragma omp parallel for num_threads(context.cpu_threads()) schedule(static)
  for (std::int64_t h = 0; h < heads; ++h) {
    const float* w = weights.data<float>() + h * count;
    const float* g = grad_weights.data<float>() + h * count;
    float* out = grad_b.data<float>() + h * grad_b.size(1) + first;
    for (std::int64_t e = 0; e < count; ++e) {
      out[e] += g[e] * w[e];
    }
  }
}

void rpe_outer_columns(ComputeContext& context, const RpeColumnBlock& block, const Tensor& rows,
                       const Tensor& values, const Tensor& columns) {
  const std::int64_t positions = rows.size(0) * rows.size(1) * rows.size(2);
  const std::int64_t dk = rows.size(3);
  const std::int64_t stored = values.size(3);
  const std::int64_t row_columns = block.features * block.width;
#pragma omp parallel for num_threads(context.cpu_threads()) schedule(static)
  for (std::int64_t p = 0; p < positions; ++p) {
    const float* r = rows.data<float>() + p * dk + block.first_feature;
    const float* v = values.data<float>() + p * stored;
    float* out = columns.data<float>() + p * row_columns;
    for (std::int64_t f = 0; f < block.features; ++f) {
      const float feature = elu_feature(r[f]);
      for (std::int64_t e = 0; e < block.width; ++e) {
        out[rpe_column(f, e, block.width)] = feature * value_at(block, v, stored, e);
      }
    }
  }
}

void rpe_contract_columns(ComputeContext& context, const RpeColumnBlock& block, const Tensor& rows,
                          const Tensor& values, const Tensor& columns, const Tensor& grad_rows,
                          const Tensor& out_values) {
  const std::int64_t positions = rows.size(0) * rows.size(1) * rows.size(2);
  const std::int64_t dk = rows.size(3);
  const std::int64_t row_columns = block.features * block.width;
  const std::int64_t stored = values.defined() ? values.size(3) : 0;
  const std::int64_t out_width = out_values.defined() ? out_values.size(3) : 0;
#pragma omp parallel for num_threads(context.cpu_threads()) schedule(static)
  for (std::int64_t p = 0; p < positions; ++p) {
    const float* r = rows.data<float>() + p * dk + block.first_feature;
    const float* c = columns.data<float>() + p * row_columns;
    if (grad_rows.defined()) {
      const float* v = values.data<float>() + p * stored;
      float* g = grad_rows.data<float>() + p * dk + block.first_feature;
      for (std::int64_t f = 0; f < block.features; ++f) {
        float sum = 0.0f;
        for (std::int64_t e = 0; e < block.width; ++e) {
          sum += value_at(block, v, stored, e) * c[rpe_column(f, e, block.width)];
        }
        g[f] += elu_feature_derivative(r[f]) * sum;
      }
    }
    if (out_values.defined()) {
      float* o = out_values.data<float>() + p * out_width;
      for (std::int64_t f = 0; f < block.features; ++f) {
        const float feature = elu_feature(r[f]);
        for (std::int64_t e = 0; e < out_width; ++e) {
          o[e] += feature * c[rpe_column(f, e, block.width)];
        }
      }
    }
  }
}

void rpe_readout(ComputeContext& context, const Tensor& numerator, float eps, const Tensor& out) {
  const std::int64_t positions = out.numel() / out.size(3);
  const std::int64_t dv = out.size(3);
#pragma omp parallel for num_threads(context.cpu_threads()) schedule(static)
  for (std::int64_t p = 0; p < positions; ++p) {
    const float* num = numerator.data<float>() + p * (dv + 1);
    const float inverse = 1.0f / rpe_clamped_denominator(num[dv], eps);
    float* o = out.data<float>() + p * dv;
    for (std::int64_t e = 0; e < dv; ++e) {
      o[e] = num[e] * inverse;
    }
  }
}

void rpe_readout_backward(ComputeContext& context, const Tensor& numerator, const Tensor& grad_out,
                          float eps, const Tensor& readout_grad) {
  const std::int64_t positions = grad_out.numel() / grad_out.size(3);
  const std::int64_t dv = grad_out.size(3);
#pragma omp parallel for num_threads(context.cpu_threads()) schedule(static)
  for (std::int64_t p = 0; p < positions; ++p) {
    const float* num = numerator.data<float>() + p * (dv + 1);
    const float* g = grad_out.data<float>() + p * dv;
    float* w = readout_grad.data<float>() + p * (dv + 1);
    const float inverse = 1.0f / rpe_clamped_denominator(num[dv], eps);
    float grad_dot_out = 0.0f;
    for (std::int64_t e = 0; e < dv; ++e) {
      grad_dot_out += g[e] * num[e] * inverse;
      w[e] = g[e] * inverse;
    }
    w[dv] = rpe_denominator_gradient(grad_dot_out, num[dv], eps);
  }
}

void rpe_gather_rows(ComputeContext& context, const RpeRowBlocks& blocks, const Tensor& rows,
                     const Tensor& packed) {
  const std::int64_t planes = rows.size(0) * rows.size(1);
  const std::int64_t length = rows.size(2);
  const std::int64_t width = rows.size(3);
  const std::int64_t packed_width = blocks.count * width;
#pragma omp parallel for collapse(2) num_threads(context.cpu_threads()) schedule(static)
  for (std::int64_t p = 0; p < planes; ++p) {
    for (std::int64_t r = 0; r < blocks.rows; ++r) {
      const float* from = rows.data<float>() + p * length * width;
      float* to = packed.data<float>() + (p * blocks.rows + r) * packed_width;
      for (std::int64_t m = 0; m < blocks.count; ++m) {
        const std::int64_t row = blocks.first + m * blocks.stride + r;
        const bool inside = row >= 0 && row < length;
        for (std::int64_t f = 0; f < width; ++f) {
          to[m * width + f] = inside ? from[row * width + f] : 0.0f;
        }
      }
    }
  }
}

void rpe_scatter_add_rows(ComputeContext& context, const RpeRowBlocks& blocks, const Tensor& packed,
                          const Tensor& rows) {
  const std::int64_t planes = rows.size(0) * rows.size(1);
  const std::int64_t length = rows.size(2);
  const std::int64_t width = rows.size(3);
  const std::int64_t packed_width = blocks.count * width;
  // Blocks do not overlap (stride >= rows, or one block): each row has one writer task.
#pragma omp parallel for collapse(2) num_threads(context.cpu_threads()) schedule(static)
  for (std::int64_t p = 0; p < planes; ++p) {
    for (std::int64_t r = 0; r < blocks.rows; ++r) {
      const float* from = packed.data<float>() + (p * blocks.rows + r) * packed_width;
      float* to = rows.data<float>() + p * length * width;
      for (std::int64_t m = 0; m < blocks.count; ++m) {
        const std::int64_t row = blocks.first + m * blocks.stride + r;
        if (row < 0 || row >= length) {
          continue;
        }
        for (std::int64_t f = 0; f < width; ++f) {
          to[row * width + f] += from[m * width + f];
        }
      }
    }
  }
}

void rpe_causal_leaves(ComputeContext& context, std::int64_t leaf, const Tensor& weights,
                       const Tensor& x, const Tensor& y) {
  const std::int64_t heads = x.size(1);
  const std::int64_t length = x.size(2);
  const std::int64_t width = x.size(3);
  const std::int64_t positions = x.size(0) * heads * length;
#pragma omp parallel for num_threads(context.cpu_threads()) schedule(static)
  for (std::int64_t p = 0; p < positions; ++p) {
    const std::int64_t i = p % length;
    const std::int64_t plane = p / length;
    const float* w = weights.data<float>() + (plane % heads) * (2 * length - 1) + length - 1;
    const float* xs = x.data<float>() + plane * length * width;
    float* out = y.data<float>() + p * width;
    for (std::int64_t j = i - i % leaf; j <= i; ++j) {
      const float c = w[j - i];
      for (std::int64_t f = 0; f < width; ++f) {
        out[f] += c * xs[j * width + f];
      }
    }
  }
}

void rpe_causal_leaves_backward(ComputeContext& context, std::int64_t leaf, const Tensor& weights,
                                const Tensor& x, const Tensor& grad_y, const Tensor& grad_x,
                                const Tensor& grad_weights) {
  const std::int64_t batch = x.size(0);
  const std::int64_t heads = x.size(1);
  const std::int64_t length = x.size(2);
  const std::int64_t width = x.size(3);
  const std::int64_t entries = 2 * length - 1;
  if (grad_x.defined()) {
    // grad_x_j += sum_{j <= i < leaf end} c_{j - i} grad_y_i: the transposed leaf.
    const std::int64_t positions = batch * heads * length;
#pragma omp parallel for num_threads(context.cpu_threads()) schedule(static)
    for (std::int64_t p = 0; p < positions; ++p) {
      const std::int64_t j = p % length;
      const std::int64_t plane = p / length;
      const float* w = weights.data<float>() + (plane % heads) * entries + length - 1;
      const float* gy = grad_y.data<float>() + plane * length * width;
      float* out = grad_x.data<float>() + p * width;
      const std::int64_t end = std::min(length, j - j % leaf + leaf);
      for (std::int64_t i = j; i < end; ++i) {
        const float c = w[j - i];
        for (std::int64_t f = 0; f < width; ++f) {
          out[f] += c * gy[i * width + f];
        }
      }
    }
  }
  if (!grad_weights.defined()) {
    return;
  }
  // grad_w[g, -d] += sum_{b, i - j = d in one leaf, f} grad_y_i x_j: one task per (head, lag d),
  // summed in double over the batch and the leaves.
  const std::int64_t lags = std::min(leaf, length);
#pragma omp parallel for collapse(2) num_threads(context.cpu_threads()) schedule(static)
  for (std::int64_t h = 0; h < heads; ++h) {
    for (std::int64_t d = 0; d < lags; ++d) {
      double sum = 0.0;
      for (std::int64_t b = 0; b < batch; ++b) {
        const std::int64_t plane = b * heads + h;
        const float* gy = grad_y.data<float>() + plane * length * width;
        const float* xs = x.data<float>() + plane * length * width;
        for (std::int64_t i = d; i < length; ++i) {
          if (i % leaf < d) {
            continue;  // i - d lies in the previous leaf
          }
          float dot = 0.0f;
          for (std::int64_t f = 0; f < width; ++f) {
            dot += gy[i * width + f] * xs[(i - d) * width + f];
          }
          sum += dot;
        }
      }
      grad_weights.data<float>()[h * entries + length - 1 - d] += static_cast<float>(sum);
    }
  }
}

}  // namespace longseq::cpu
