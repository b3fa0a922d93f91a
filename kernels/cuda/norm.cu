// Layer norm and RMS norm on CUDA: one set of kernels for both, with RMS norm as the case without
// mean and beta (kernels/common/norm_math.h), selected by null mean / beta pointers (those of layer
// norm are never null here: kernels run only for R >= 1, C >= 1). Activations are fp32, bf16 or
// fp16, computed in fp32; parameters and statistics are fp32.
//
// Forward and grad_x: one block per row, row sums by block reduction. grad_gamma / grad_beta:
// column tiles x row ranges write per-range partial sums, and a second kernel adds the partials
// of each column in range order: no atomics, so the result has the same bits on every run.
#include <algorithm>
#include <cstdint>
#include <cub/block/block_reduce.cuh>

#include "kernels/backends.h"
#include "kernels/common/norm_math.h"
#include "kernels/cuda/element.cuh"
#include "runtime/cuda/resources.h"

namespace longseq::cuda {

namespace {

constexpr int kRowThreads = 256;
using RowReduce = cub::BlockReduce<float, kRowThreads>;

// Parameter-gradient partials: a block covers kColumnTile columns (one warp wide, for coalesced
// loads) and a range of rows strided over kRowLanes lanes.
constexpr int kColumnTile = 32;
constexpr int kRowLanes = 8;
// Row ranges are at least kMinRowsPerRange long and at most kMaxRanges many, so the final sum over
// ranges stays short; both depend only on the row count, never on the device.
constexpr std::int64_t kMinRowsPerRange = 32;
constexpr std::int64_t kMaxRanges = 512;
constexpr int kSumThreads = 256;

// One block per row. mean and beta are null for RMS norm.
template <typename T>
__global__ void __launch_bounds__(kRowThreads)
    norm_forward_kernel(std::int64_t columns, const T* x, const float* gamma, const float* beta,
                        float eps, T* y, float* mean, float* rstd) {
  __shared__ typename RowReduce::TempStorage reduce_storage;
  __shared__ float row_mean_shared;
  __shared__ float row_rstd_shared;
  const std::int64_t row = blockIdx.x;
  const T* x_row = x + row * columns;  // (C)
  T* y_row = y + row * columns;        // (C)
  const auto column_count = static_cast<float>(columns);

  float row_mean = 0.0f;
  if (mean != nullptr) {
    float sum = 0.0f;
    for (std::int64_t c = threadIdx.x; c < columns; c += kRowThreads) {
      sum += element_to_float(x_row[c]);
    }
    sum = RowReduce(reduce_storage).Sum(sum);
    if (threadIdx.x == 0) {
      row_mean_shared = sum / column_count;
      mean[row] = row_mean_shared;
    }
    __syncthreads();  // publishes the mean and frees reduce_storage for the next reduction
    row_mean = row_mean_shared;
  }
  // Second pass over deviations from the mean: no cancellation, unlike E[x^2] - E[x]^2.
  float squares = 0.0f;
  for (std::int64_t c = threadIdx.x; c < columns; c += kRowThreads) {
    const float deviation = element_to_float(x_row[c]) - row_mean;
    squares += deviation * deviation;
  }
  squares = RowReduce(reduce_storage).Sum(squares);
  if (threadIdx.x == 0) {
    row_rstd_shared = norm_rstd(squares / column_count, eps);
    rstd[row] = row_rstd_shared;
  }
  __syncthreads();
  const float row_rstd = row_rstd_shared;
  for (std::int64_t c = threadIdx.x; c < columns; c += kRowThreads) {
    const float shift = beta != nullptr ? beta[c] : 0.0f;
    y_row[c] = element_from_float<T>(
        norm_output(element_to_float(x_row[c]), row_mean, row_rstd, gamma[c], shift));
  }
}

// One block per row. mean is null for RMS norm (whose grad_x has no mean_dxhat term).
template <typename T>
__global__ void __launch_bounds__(kRowThreads)
    norm_grad_input_kernel(std::int64_t columns, const T* grad_y, const T* x, const float* gamma,
                           const float* mean, const float* rstd, T* grad_x) {
  __shared__ typename RowReduce::TempStorage reduce_storage;
  __shared__ float mean_dxhat_shared;
  __shared__ float mean_dxhat_xhat_shared;
  const std::int64_t row = blockIdx.x;
  const T* x_row = x + row * columns;            // (C)
  const T* grad_y_row = grad_y + row * columns;  // (C)
  T* grad_x_row = grad_x + row * columns;        // (C)
  const float row_mean = mean != nullptr ? mean[row] : 0.0f;
  const float row_rstd = rstd[row];
  const auto column_count = static_cast<float>(columns);

  float sum_dxhat = 0.0f;
  float sum_dxhat_xhat = 0.0f;
  for (std::int64_t c = threadIdx.x; c < columns; c += kRowThreads) {
    const float xhat = norm_normalized(element_to_float(x_row[c]), row_mean, row_rstd);
    const float dxhat = element_to_float(grad_y_row[c]) * gamma[c];
    sum_dxhat += dxhat;
    sum_dxhat_xhat += dxhat * xhat;
  }
  sum_dxhat_xhat = RowReduce(reduce_storage).Sum(sum_dxhat_xhat);
  if (threadIdx.x == 0) {
    mean_dxhat_xhat_shared = sum_dxhat_xhat / column_count;
  }
  if (mean != nullptr) {
    __syncthreads();  // frees reduce_storage for the next reduction
    sum_dxhat = RowReduce(reduce_storage).Sum(sum_dxhat);
  }
  if (threadIdx.x == 0) {
    mean_dxhat_shared = mean != nullptr ? sum_dxhat / column_count : 0.0f;
  }
  __syncthreads();
  const float mean_dxhat = mean_dxhat_shared;
  const float mean_dxhat_xhat = mean_dxhat_xhat_shared;
  for (std::int64_t c = threadIdx.x; c < columns; c += kRowThreads) {
    const float xhat = norm_normalized(element_to_float(x_row[c]), row_mean, row_rstd);
    const float dxhat = element_to_float(grad_y_row[c]) * gamma[c];
    grad_x_row[c] =
        element_from_float<T>(norm_grad_input(dxhat, xhat, row_rstd, mean_dxhat, mean_dxhat_xhat));
  }
}

// Block (column tile, row range) writes partial_gamma / partial_beta (ranges, C) at its range.
// mean and partial_beta are null for RMS norm.
template <typename T>
__global__ void __launch_bounds__(kColumnTile* kRowLanes)
    norm_parameter_partials_kernel(std::int64_t rows, std::int64_t columns,
                                   std::int64_t rows_per_range, const T* grad_y, const T* x,
                                   const float* mean, const float* rstd, float* partial_gamma,
                                   float* partial_beta) {
  __shared__ float lane_gamma[kRowLanes][kColumnTile];
  __shared__ float lane_beta[kRowLanes][kColumnTile];
  const std::int64_t column = static_cast<std::int64_t>(blockIdx.x) * kColumnTile + threadIdx.x;
  const std::int64_t row_begin = static_cast<std::int64_t>(blockIdx.y) * rows_per_range;
  const std::int64_t row_end = min(rows, row_begin + rows_per_range);
  float sum_gamma = 0.0f;
  float sum_beta = 0.0f;
  if (column < columns) {
    for (std::int64_t row = row_begin + threadIdx.y; row < row_end; row += kRowLanes) {
      const float row_mean = mean != nullptr ? mean[row] : 0.0f;
      const float dy = element_to_float(grad_y[row * columns + column]);
      const float xhat =
          norm_normalized(element_to_float(x[row * columns + column]), row_mean, rstd[row]);
      sum_gamma += dy * xhat;
      sum_beta += dy;
    }
  }
  lane_gamma[threadIdx.y][threadIdx.x] = sum_gamma;
  lane_beta[threadIdx.y][threadIdx.x] = sum_beta;
  __syncthreads();
  if (threadIdx.y == 0 && column < columns) {
    float tile_gamma = 0.0f;
    float tile_beta = 0.0f;
    for (int lane = 0; lane < kRowLanes; ++lane) {  // fixed order: deterministic
      tile_gamma += lane_gamma[lane][threadIdx.x];
      tile_beta += lane_beta[lane][threadIdx.x];
    }
    partial_gamma[blockIdx.y * columns + column] = tile_gamma;
    if (partial_beta != nullptr) {
      partial_beta[blockIdx.y * columns + column] = tile_beta;
    }
  }
}

// total[c] = sum over ranges k, in order, of partials[k, c].
__global__ void __launch_bounds__(kSumThreads)
    sum_partials_kernel(std::int64_t ranges, std::int64_t columns, const float* partials,
                        float* total) {
  const std::int64_t column = static_cast<std::int64_t>(blockIdx.x) * kSumThreads + threadIdx.x;
  if (column >= columns) {
    return;
  }
  float sum = 0.0f;
  for (std::int64_t range = 0; range < ranges; ++range) {
    sum += partials[range * columns + column];
  }
  total[column] = sum;
}

// Scratch memory ordered on the stream: allocation and release queue behind the kernels that use
// it, so a call never synchronises the device (as cudaMalloc / cudaFree would).
class StreamScratch {
 public:
  StreamScratch(std::size_t floats, cudaStream_t stream) : stream_(stream) {
    CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&data_), floats * sizeof(float), stream));
  }
  ~StreamScratch() { cudaFreeAsync(data_, stream_); }  // a release error cannot be reported here
  StreamScratch(const StreamScratch&) = delete;
  StreamScratch& operator=(const StreamScratch&) = delete;
  [[nodiscard]] float* data() const { return data_; }

 private:
  float* data_ = nullptr;
  cudaStream_t stream_;
};

void norm_forward(ComputeContext& context, const char* op, const Tensor& x, const float* gamma,
                  const float* beta, float eps, const Tensor& y, float* mean, float* rstd) {
  const std::int64_t rows = x.size(0);
  const std::int64_t columns = x.size(1);
  if (rows == 0) {
    return;
  }
  const unsigned int blocks = row_blocks(op, rows);
  const cudaStream_t stream = context.cuda().stream();
  dispatch_floating(op, x.dtype(), [&](auto element) {
    using T = decltype(element);
    norm_forward_kernel<T><<<blocks, kRowThreads, 0, stream>>>(columns, x.data<T>(), gamma, beta,
                                                               eps, y.data<T>(), mean, rstd);
    CUDA_CHECK_LAUNCH();
  });
}

// mean and grad_beta are null for RMS norm.
void norm_backward(ComputeContext& context, const char* op, const Tensor& grad_y, const Tensor& x,
                   const float* gamma, const float* mean, const float* rstd, const Tensor& grad_x,
                   float* grad_gamma, float* grad_beta) {
  const std::int64_t rows = x.size(0);
  const std::int64_t columns = x.size(1);
  const cudaStream_t stream = context.cuda().stream();
  if (rows == 0) {  // the parameter gradients are empty sums
    CUDA_CHECK(cudaMemsetAsync(grad_gamma, 0, columns * sizeof(float), stream));
    if (grad_beta != nullptr) {
      CUDA_CHECK(cudaMemsetAsync(grad_beta, 0, columns * sizeof(float), stream));
    }
    return;
  }
  const unsigned int blocks = row_blocks(op, rows);
  const std::int64_t ranges =
      std::min(kMaxRanges, (rows + kMinRowsPerRange - 1) / kMinRowsPerRange);
  const std::int64_t rows_per_range = (rows + ranges - 1) / ranges;
  const std::int64_t used_ranges = (rows + rows_per_range - 1) / rows_per_range;
  const std::int64_t partial_count = used_ranges * columns;
  StreamScratch scratch(static_cast<std::size_t>(grad_beta != nullptr ? 2 : 1) * partial_count,
                        stream);
  float* partial_gamma = scratch.data();                                                 // (K, C)
  float* partial_beta = grad_beta != nullptr ? partial_gamma + partial_count : nullptr;  // (K, C)
  const dim3 partial_grid(static_cast<unsigned int>((columns + kColumnTile - 1) / kColumnTile),
                          static_cast<unsigned int>(used_ranges));
  const dim3 partial_block(kColumnTile, kRowLanes);
  const auto sum_blocks = static_cast<unsigned int>((columns + kSumThreads - 1) / kSumThreads);

  dispatch_floating(op, x.dtype(), [&](auto element) {
    using T = decltype(element);
    norm_grad_input_kernel<T><<<blocks, kRowThreads, 0, stream>>>(
        columns, grad_y.data<T>(), x.data<T>(), gamma, mean, rstd, grad_x.data<T>());
    CUDA_CHECK_LAUNCH();
    norm_parameter_partials_kernel<T><<<partial_grid, partial_block, 0, stream>>>(
        rows, columns, rows_per_range, grad_y.data<T>(), x.data<T>(), mean, rstd, partial_gamma,
        partial_beta);
    CUDA_CHECK_LAUNCH();
  });
  sum_partials_kernel<<<sum_blocks, kSumThreads, 0, stream>>>(used_ranges, columns, partial_gamma,
                                                              grad_gamma);
  CUDA_CHECK_LAUNCH();
  if (grad_beta != nullptr) {
    sum_partials_kernel<<<sum_blocks, kSumThreads, 0, stream>>>(used_ranges, columns, partial_beta,
                                                                grad_beta);
    CUDA_CHECK_LAUNCH();
  }
}

}  // namespace

void layer_norm_forward(ComputeContext& context, const Tensor& x, const Tensor& gamma,
                        const Tensor& beta, float eps, const Tensor& y, const Tensor& mean,
                        const Tensor& rstd) {
  norm_forward(context, "layer_norm_forward", x, gamma.data<float>(), beta.data<float>(), eps, y,
               mean.data<float>(), rstd.data<float>());
}

void layer_norm_backward(ComputeContext& context, const Tensor& grad_y, const Tensor& x,
                         const Tensor& gamma, const Tensor& mean, const Tensor& rstd,
                         const Tensor& grad_x, const Tensor& grad_gamma, const Tensor& grad_beta) {
  norm_backward(context, "layer_norm_backward", grad_y, x, gamma.data<float>(), mean.data<float>(),
                rstd.data<float>(), grad_x, grad_gamma.data<float>(), grad_beta.data<float>());
}

void rms_norm_forward(ComputeContext& context, const Tensor& x, const Tensor& gamma, float eps,
                      const Tensor& y, const Tensor& rstd) {
  norm_forward(context, "rms_norm_forward", x, gamma.data<float>(), nullptr, eps, y, nullptr,
               rstd.data<float>());
}

void rms_norm_backward(ComputeContext& context, const Tensor& grad_y, const Tensor& x,
                       const Tensor& gamma, const Tensor& rstd, const Tensor& grad_x,
                       const Tensor& grad_gamma) {
  norm_backward(context, "rms_norm_backward", grad_y, x, gamma.data<float>(), nullptr,
                rstd.data<float>(), grad_x, grad_gamma.data<float>(), nullptr);
}

}  // namespace longseq::cuda
