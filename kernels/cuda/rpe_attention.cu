// The pointwise parts of rpe attention on CUDA (kernels/rpe_attention.h): position weights (one
// block per head: a max reduction, then the exp), the feature-times-value columns, their
// contraction, and the readout, each a grid-stride loop over (B, H, N) rows or elements. The
// Toeplitz products go through cuda::toeplitz_product (cuFFT). The math is shared with the CPU
// (kernels/common/rpe_attention_math.h). fp32.
#include <cstdint>

#include "kernels/backends.h"
#include "kernels/common/rpe_attention_math.h"
#include "kernels/cuda/element.cuh"
#include "runtime/cuda/check.h"
#include "runtime/cuda/resources.h"

namespace longseq::cuda {

namespace {

constexpr int kThreads = 256;

unsigned int blocks_for(long long count) { return grid_stride_blocks(count, kThreads); }

// weights[h, e] = c at entry first + e of b[h]; one block per head.
__global__ void __launch_bounds__(kThreads)
    weights_kernel(const float* b, long long entries, bool causal, long long first, long long count,
                   float* weights) {
  __shared__ float partial[kThreads];
  const long long length = (entries + 1) / 2;
  const float* row = b + blockIdx.x * entries;
  float shift = -INFINITY;
  for (long long e = threadIdx.x; e < entries; e += blockDim.x) {
    if (rpe_offset_used(rpe_offset(e, length), causal)) {
      shift = fmaxf(shift, row[e]);
    }
  }
  partial[threadIdx.x] = shift;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (static_cast<int>(threadIdx.x) < half) {
      partial[threadIdx.x] = fmaxf(partial[threadIdx.x], partial[threadIdx.x + half]);
    }
    __syncthreads();
  }
  shift = partial[0];
  float* out = weights + blockIdx.x * count;
  for (long long e = threadIdx.x; e < count; e += blockDim.x) {
    const bool used = rpe_offset_used(rpe_offset(first + e, length), causal);
    out[e] = used ? rpe_weight(row[first + e], shift) : 0.0f;
  }
}

__global__ void weights_backward_kernel(const float* weights, const float* grad_weights,
                                        long long heads, long long count, long long first,
                                        long long entries, float* grad_b) {
  for (long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
       e < heads * count; e += static_cast<long long>(gridDim.x) * blockDim.x) {
    grad_b[(e / count) * entries + first + e % count] += grad_weights[e] * weights[e];
  }
}

struct Columns {
  long long dk;        // features per row of `rows`
  long long stored;    // value columns stored per row
  long long first;     // first feature of the block
  long long features;  // features in the block
  long long width;     // value columns per feature (stored + 1 with the appended one)
  bool append_one;

  [[nodiscard]] __device__ float value(const float* values, long long p, long long e) const {
    return append_one && e == stored ? 1.0f : values[p * stored + e];
  }
};

Columns columns_of(const RpeColumnBlock& block, const Tensor& rows, const Tensor& values) {
  return {rows.size(3),        values.defined() ? values.size(3) : 0,
          block.first_feature, block.features,
          block.width,         block.append_one};
}

// columns[p, (f, e)] = phi(rows[p, first + f]) v'[p, e].
__global__ void outer_kernel(Columns c, long long positions, const float* rows, const float* values,
                             float* columns) {
  const long long per_row = c.features * c.width;
  for (long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
       e < positions * per_row; e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long p = e / per_row;
    const long long f = (e % per_row) / c.width;
    const long long value = e % c.width;
    columns[e] = elu_feature(rows[p * c.dk + c.first + f]) * c.value(values, p, value);
  }
}

// grad_rows[p, first + f] += phi'(rows) sum_e v'[p, e] columns[p, (f, e)].
__global__ void grad_rows_kernel(Columns c, long long positions, const float* rows,
                                 const float* values, const float* columns, float* grad_rows) {
  for (long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
       e < positions * c.features; e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long p = e / c.features;
    const long long f = e % c.features;
    const float* column = columns + (p * c.features + f) * c.width;
    float sum = 0.0f;
    for (long long value = 0; value < c.width; ++value) {
      sum += c.value(values, p, value) * column[value];
    }
    const long long at = p * c.dk + c.first + f;
    grad_rows[at] += elu_feature_derivative(rows[at]) * sum;
  }
}

// out_values[p, e] += sum_f phi(rows[p, first + f]) columns[p, (f, e)] for e < out_width.
__global__ void out_values_kernel(Columns c, long long positions, long long out_width,
                                  const float* rows, const float* columns, float* out_values) {
  for (long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
       e < positions * out_width; e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long p = e / out_width;
    const long long value = e % out_width;
    float sum = 0.0f;
    for (long long f = 0; f < c.features; ++f) {
      sum += elu_feature(rows[p * c.dk + c.first + f]) *
             columns[(p * c.features + f) * c.width + value];
    }
    out_values[e] += sum;
  }
}

__global__ void readout_kernel(const float* numerator, long long positions, long long dv, float eps,
                               float* out) {
  for (long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
       e < positions * dv; e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const float* num = numerator + (e / dv) * (dv + 1);
    out[e] = num[e % dv] / rpe_clamped_denominator(num[dv], eps);
  }
}

__global__ void readout_backward_kernel(const float* numerator, const float* grad_out,
                                        long long positions, long long dv, float eps,
                                        float* readout_grad) {
  for (long long p = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; p < positions;
       p += static_cast<long long>(gridDim.x) * blockDim.x) {
    const float* num = numerator + p * (dv + 1);
    const float* g = grad_out + p * dv;
    float* w = readout_grad + p * (dv + 1);
    const float inverse = 1.0f / rpe_clamped_denominator(num[dv], eps);
    float grad_dot_out = 0.0f;
    for (long long e = 0; e < dv; ++e) {
      grad_dot_out += g[e] * num[e] * inverse;
      w[e] = g[e] * inverse;
    }
    w[dv] = rpe_denominator_gradient(grad_dot_out, num[dv], eps);
  }
}

const float* optional_data(const Tensor& tensor) {
  return tensor.defined() ? tensor.data<float>() : nullptr;
}

long long positions_of(const Tensor& rows) { return rows.numel() / rows.size(-1); }

}  // namespace

void rpe_position_weights(ComputeContext& context, const Tensor& b, bool causal, std::int64_t first,
                          const Tensor& weights) {
  weights_kernel<<<row_blocks("rpe_position_weights", b.size(0)), kThreads, 0,
                   context.cuda().stream()>>>(b.data<float>(), b.size(1), causal, first,
                                              weights.size(1), weights.data<float>());
  CUDA_CHECK_LAUNCH();
}

void rpe_position_weights_backward(ComputeContext& context, const Tensor& weights,
                                   const Tensor& grad_weights, std::int64_t first,
                                   const Tensor& grad_b) {
  weights_backward_kernel<<<blocks_for(weights.numel()), kThreads, 0, context.cuda().stream()>>>(
      weights.data<float>(), grad_weights.data<float>(), weights.size(0), weights.size(1), first,
      grad_b.size(1), grad_b.data<float>());
  CUDA_CHECK_LAUNCH();
}

void rpe_outer_columns(ComputeContext& context, const RpeColumnBlock& block, const Tensor& rows,
                       const Tensor& values, const Tensor& columns) {
  const long long positions = positions_of(rows);
  outer_kernel<<<blocks_for(positions * block.features * block.width), kThreads, 0,
                 context.cuda().stream()>>>(columns_of(block, rows, values), positions,
                                            rows.data<float>(), values.data<float>(),
                                            columns.data<float>());
  CUDA_CHECK_LAUNCH();
}

void rpe_contract_columns(ComputeContext& context, const RpeColumnBlock& block, const Tensor& rows,
                          const Tensor& values, const Tensor& columns, const Tensor& grad_rows,
                          const Tensor& out_values) {
  const long long positions = positions_of(rows);
  const Columns c = columns_of(block, rows, values);
  const cudaStream_t stream = context.cuda().stream();
  if (grad_rows.defined()) {
    grad_rows_kernel<<<blocks_for(positions * block.features), kThreads, 0, stream>>>(
        c, positions, rows.data<float>(), optional_data(values), columns.data<float>(),
        grad_rows.data<float>());
    CUDA_CHECK_LAUNCH();
  }
  if (out_values.defined()) {
    const long long out_width = out_values.size(3);
    out_values_kernel<<<blocks_for(positions * out_width), kThreads, 0, stream>>>(
        c, positions, out_width, rows.data<float>(), columns.data<float>(),
        out_values.data<float>());
    CUDA_CHECK_LAUNCH();
  }
}

void rpe_readout(ComputeContext& context, const Tensor& numerator, float eps, const Tensor& out) {
  const long long positions = positions_of(out);
  readout_kernel<<<blocks_for(out.numel()), kThreads, 0, context.cuda().stream()>>>(
      numerator.data<float>(), positions, out.size(3), eps, out.data<float>());
  CUDA_CHECK_LAUNCH();
}

void rpe_readout_backward(ComputeContext& context, const Tensor& numerator, const Tensor& grad_out,
                          float eps, const Tensor& readout_grad) {
  const long long positions = positions_of(grad_out);
  readout_backward_kernel<<<blocks_for(positions), kThreads, 0, context.cuda().stream()>>>(
      numerator.data<float>(), grad_out.data<float>(), positions, grad_out.size(3), eps,
      readout_grad.data<float>());
  CUDA_CHECK_LAUNCH();
}

}  // namespace longseq::cuda
