// cuda::toeplitz_product / toeplitz_product_backward (kernels/toeplitz.h) by batched cuFFT real
// transforms. The embedded kernels of all groups are transformed in one batched R2C; the (b, g, f)
// columns are processed in chunks whose padded buffers fit a fixed budget: a gather kernel writes
// each strided column zero-padded to length L, a batched R2C transforms them, a pointwise kernel
// multiplies by FFT(a) (or its conjugate), a batched C2R transforms back and a scatter kernel
// writes the first rows scaled by 1 / L. grad_t: per chunk, conj(FFT(grad_y)) . FFT(x) is summed
// per group by one thread per (g, frequency) in column order (deterministic), then one batched C2R
// of the group sums. The index math is shared with the CPU (kernels/common/toeplitz_math.h).
#include <cufft.h>

#include <algorithm>
#include <cstdint>

#include "kernels/backends.h"
#include "kernels/common/toeplitz_math.h"
#include "kernels/cuda/element.cuh"
#include "kernels/cuda/real_fft_plan.cuh"
#include "runtime/cuda/check.h"
#include "runtime/cuda/resources.h"

namespace longseq::cuda {

namespace {

constexpr int kThreads = 256;
// Bytes of padded real columns per chunk (the spectra take about as much again).
constexpr std::int64_t kChunkBudgetBytes = std::int64_t{256} << 20;

struct Geometry {
  long long groups, n_out, n_in, columns, length, spectrum;

  [[nodiscard]] __host__ __device__ long long offsets() const { return n_out + n_in - 1; }
};

Geometry geometry_of(const ToeplitzShape& shape) {
  return {shape.groups,  shape.n_out,      shape.n_in,
          shape.columns, shape.fft_length, shape.fft_length / 2 + 1};
}

// kernels (G, L), zeroed beforehand: the offsets of t (G, n_out + n_in - 1) at their circulant
// positions.
__global__ void place_offsets(Geometry g, const float* t, float* kernels) {
  const long long total = g.groups * g.offsets();
  for (long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long group = e / g.offsets();
    const long long offset = toeplitz_offset(e % g.offsets(), g.n_out);
    kernels[group * g.length + circulant_kernel_index(offset, g.length)] = t[e];
  }
}

// real (count, L): columns [first, first + count) of the (rows, F) matrices of `matrix`,
// zero-padded.
__global__ void gather_columns(Geometry g, const float* matrix, long long rows, long long first,
                               long long count, float* real) {
  const long long total = count * g.length;
  for (long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long i = e % g.length;
    const ToeplitzColumn c = toeplitz_column(first + e / g.length, g.groups, g.columns);
    real[e] = i < rows ? matrix[(c.bg * rows + i) * g.columns + c.f] : 0.0f;
  }
}

// The first `rows` entries of each real (count, L) row times `scale` into (or onto) its column.
__global__ void scatter_columns(Geometry g, const float* real, long long rows, long long first,
                                long long count, float scale, bool accumulate, float* matrix) {
  const long long total = count * rows;
  for (long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long i = e % rows;
    const long long local = e / rows;
    const ToeplitzColumn c = toeplitz_column(first + local, g.groups, g.columns);
    float& out = matrix[(c.bg * rows + i) * g.columns + c.f];
    const float value = real[local * g.length + i] * scale;
    out = accumulate ? out + value : value;
  }
}

// spectra (count, L/2 + 1) *= kernel spectrum of the column's group (conjugated for the
// transposed block).
__global__ void multiply_spectra(Geometry g, const cufftComplex* kernels, long long first,
                                 long long count, bool conjugate, cufftComplex* spectra) {
  const long long total = count * g.spectrum;
  for (long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const ToeplitzColumn c = toeplitz_column(first + e / g.spectrum, g.groups, g.columns);
    const cufftComplex a = kernels[c.g * g.spectrum + e % g.spectrum];
    const float ai = conjugate ? -a.y : a.y;
    const cufftComplex s = spectra[e];
    spectra[e] = make_cuFloatComplex(s.x * a.x - s.y * ai, s.x * ai + s.y * a.x);
  }
}

// sums (G, L/2 + 1) += sum over the chunk's columns of group g of conj(grad_y) . x, one thread per
// (g, frequency), in column order.
__global__ void add_correlations(Geometry g, const cufftComplex* grad_y, const cufftComplex* x,
                                 long long first, long long count, cufftComplex* sums) {
  const long long total = g.groups * g.spectrum;
  for (long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long group = e / g.spectrum;
    const long long k = e % g.spectrum;
    cufftComplex sum = sums[e];
    // The matrices bg = b G + group that overlap the chunk, and their columns inside it.
    const long long bg_first = first / g.columns;
    const long long bg_last = (first + count - 1) / g.columns;
    for (long long bg = bg_first + (group - bg_first % g.groups + g.groups) % g.groups;
         bg <= bg_last; bg += g.groups) {
      for (long long f = 0; f < g.columns; ++f) {
        const long long local = bg * g.columns + f - first;
        if (local < 0 || local >= count) {
          continue;
        }
        const cufftComplex a = grad_y[local * g.spectrum + k];
        const cufftComplex b = x[local * g.spectrum + k];
        sum.x += a.x * b.x + a.y * b.y;
        sum.y += a.x * b.y - a.y * b.x;
      }
    }
    sums[e] = sum;
  }
}

// grad_t (G, n_out + n_in - 1) from the correlations (G, L), scaled by 1 / L.
__global__ void extract_offsets(Geometry g, const float* correlations, float scale, bool accumulate,
                                float* grad_t) {
  const long long total = g.groups * g.offsets();
  for (long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long group = e / g.offsets();
    const long long offset = toeplitz_offset(e % g.offsets(), g.n_out);
    const float value =
        correlations[group * g.length + correlation_index(offset, g.length)] * scale;
    grad_t[e] = accumulate ? grad_t[e] + value : value;
  }
}

unsigned int blocks_for(long long count) { return grid_stride_blocks(count, kThreads); }

// Columns per chunk: the padded real buffers within the budget.
std::int64_t chunk_columns(const ToeplitzShape& shape) {
  const std::int64_t total = shape.batch * shape.groups * shape.columns;
  const std::int64_t fit =
      kChunkBudgetBytes / (shape.fft_length * static_cast<std::int64_t>(sizeof(float)));
  return std::clamp<std::int64_t>(fit, 1, total);
}

// The spectra (G, L/2 + 1) of the embedded kernels of t.
Tensor kernel_spectra(const ToeplitzShape& shape, const Geometry& g, const Tensor& t,
                      cudaStream_t stream) {
  const Tensor real = Tensor::empty({shape.groups, shape.fft_length}, DType::f32, Device::cuda);
  const Tensor spectra = Tensor::empty({shape.groups, g.spectrum, 2}, DType::f32, Device::cuda);
  CUDA_CHECK(cudaMemsetAsync(real.data<float>(), 0, real.bytes(), stream));
  place_offsets<<<blocks_for(shape.groups * shape.offsets()), kThreads, 0, stream>>>(
      g, t.data<float>(), real.data<float>());
  CUDA_CHECK_LAUNCH();
  const RealFftPlan plan(shape.fft_length, shape.groups, RealFftPlan::Direction::forward, stream);
  plan.forward(real.data<float>(), reinterpret_cast<cufftComplex*>(spectra.data<float>()));
  // `real` is freed on return; the stream must be done with it.
  CUDA_CHECK(cudaStreamSynchronize(stream));
  return spectra;
}

cufftComplex* complex_data(const Tensor& tensor) {
  return reinterpret_cast<cufftComplex*>(tensor.data<float>());
}

}  // namespace

void toeplitz_product(ComputeContext& context, const ToeplitzShape& shape, const Tensor& t,
                      const Tensor& x, const Tensor& y, bool accumulate) {
  const cudaStream_t stream = context.cuda().stream();
  const Geometry g = geometry_of(shape);
  const Tensor kernels = kernel_spectra(shape, g, t, stream);
  const std::int64_t total = shape.batch * shape.groups * shape.columns;
  const std::int64_t chunk = chunk_columns(shape);
  const Tensor real = Tensor::empty({chunk, shape.fft_length}, DType::f32, Device::cuda);
  const Tensor spectra = Tensor::empty({chunk, g.spectrum, 2}, DType::f32, Device::cuda);
  const float scale = 1.0f / static_cast<float>(shape.fft_length);
  for (std::int64_t first = 0; first < total; first += chunk) {
    const std::int64_t count = std::min(chunk, total - first);
    const RealFftPlan forward(shape.fft_length, count, RealFftPlan::Direction::forward, stream);
    const RealFftPlan inverse(shape.fft_length, count, RealFftPlan::Direction::inverse, stream);
    gather_columns<<<blocks_for(count * shape.fft_length), kThreads, 0, stream>>>(
        g, x.data<float>(), shape.n_in, first, count, real.data<float>());
    CUDA_CHECK_LAUNCH();
    forward.forward(real.data<float>(), complex_data(spectra));
    multiply_spectra<<<blocks_for(count * g.spectrum), kThreads, 0, stream>>>(
        g, complex_data(kernels), first, count, false, complex_data(spectra));
    CUDA_CHECK_LAUNCH();
    inverse.inverse(complex_data(spectra), real.data<float>());
    scatter_columns<<<blocks_for(count * shape.n_out), kThreads, 0, stream>>>(
        g, real.data<float>(), shape.n_out, first, count, scale, accumulate, y.data<float>());
    CUDA_CHECK_LAUNCH();
    // The plans are destroyed at the end of the iteration; the stream must be done with them.
    CUDA_CHECK(cudaStreamSynchronize(stream));
  }
}

void toeplitz_product_backward(ComputeContext& context, const ToeplitzShape& shape, const Tensor& t,
                               const Tensor& x, const Tensor& grad_y, const Tensor& grad_x,
                               const Tensor& grad_t, bool accumulate) {
  const cudaStream_t stream = context.cuda().stream();
  const Geometry g = geometry_of(shape);
  const bool want_x = grad_x.defined();
  const bool want_t = grad_t.defined();
  const Tensor kernels = want_x ? kernel_spectra(shape, g, t, stream) : Tensor();
  const std::int64_t total = shape.batch * shape.groups * shape.columns;
  const std::int64_t chunk = chunk_columns(shape);
  const Tensor real = Tensor::empty({chunk, shape.fft_length}, DType::f32, Device::cuda);
  const Tensor grad_spectra = Tensor::empty({chunk, g.spectrum, 2}, DType::f32, Device::cuda);
  const Tensor x_spectra =
      want_t ? Tensor::empty({chunk, g.spectrum, 2}, DType::f32, Device::cuda) : Tensor();
  const Tensor sums =
      want_t ? Tensor::zeros({shape.groups, g.spectrum, 2}, DType::f32, Device::cuda) : Tensor();
  const float scale = 1.0f / static_cast<float>(shape.fft_length);
  for (std::int64_t first = 0; first < total; first += chunk) {
    const std::int64_t count = std::min(chunk, total - first);
    const RealFftPlan forward(shape.fft_length, count, RealFftPlan::Direction::forward, stream);
    const RealFftPlan inverse(shape.fft_length, count, RealFftPlan::Direction::inverse, stream);
    gather_columns<<<blocks_for(count * shape.fft_length), kThreads, 0, stream>>>(
        g, grad_y.data<float>(), shape.n_out, first, count, real.data<float>());
    CUDA_CHECK_LAUNCH();
    forward.forward(real.data<float>(), complex_data(grad_spectra));
    if (want_t) {
      gather_columns<<<blocks_for(count * shape.fft_length), kThreads, 0, stream>>>(
          g, x.data<float>(), shape.n_in, first, count, real.data<float>());
      CUDA_CHECK_LAUNCH();
      forward.forward(real.data<float>(), complex_data(x_spectra));
      add_correlations<<<blocks_for(shape.groups * g.spectrum), kThreads, 0, stream>>>(
          g, complex_data(grad_spectra), complex_data(x_spectra), first, count, complex_data(sums));
      CUDA_CHECK_LAUNCH();
    }
    if (want_x) {
      multiply_spectra<<<blocks_for(count * g.spectrum), kThreads, 0, stream>>>(
          g, complex_data(kernels), first, count, true, complex_data(grad_spectra));
      CUDA_CHECK_LAUNCH();
      inverse.inverse(complex_data(grad_spectra), real.data<float>());
      scatter_columns<<<blocks_for(count * shape.n_in), kThreads, 0, stream>>>(
          g, real.data<float>(), shape.n_in, first, count, scale, accumulate, grad_x.data<float>());
      CUDA_CHECK_LAUNCH();
    }
    // The plans are destroyed at the end of the iteration; the stream must be done with them.
    CUDA_CHECK(cudaStreamSynchronize(stream));
  }
  if (want_t) {
    const Tensor correlations =
        Tensor::empty({shape.groups, shape.fft_length}, DType::f32, Device::cuda);
    const RealFftPlan inverse(shape.fft_length, shape.groups, RealFftPlan::Direction::inverse,
                              stream);
    inverse.inverse(complex_data(sums), correlations.data<float>());
    extract_offsets<<<blocks_for(shape.groups * shape.offsets()), kThreads, 0, stream>>>(
        g, correlations.data<float>(), scale, accumulate, grad_t.data<float>());
    CUDA_CHECK_LAUNCH();
    CUDA_CHECK(cudaStreamSynchronize(stream));
  }
}

}  // namespace longseq::cuda
