// Toeplitz products on the CPU by real FFTs (KISS FFT, fp32; kernels/toeplitz.h).
//
// The groups are processed in tiles whose spectra fit a fixed memory budget. Per tile: the
// circulant embedding a of each group's t is transformed once (A, L/2 + 1 complex entries per
// group); then every (b, g, f) column of the tile is one task for the thread team: gather the
// strided column into a zero-padded buffer of length L, transform, multiply by A (forward) or
// conj(A) (transposed block), transform back, scale by 1 / L and scatter the first rows. grad_t
// sums conj(FFT(grad_y)) . FFT(x) over the columns of a group in per-thread spectra, which are
// added in thread order (deterministic for a fixed thread count) before one inverse per group.
#include <kiss_fftr.h>
#include <omp.h>

#include <algorithm>
#include <complex>
#include <cstdint>
#include <utility>
#include <vector>

#include "kernels/backends.h"
#include "kernels/common/toeplitz_math.h"

namespace longseq::cpu {

namespace {

// Bytes of group spectra per tile (and per thread for the grad_t sums).
constexpr std::int64_t kSpectrumBudgetBytes = std::int64_t{8} << 20;

// One KISS FFT real-transform plan (RAII). A plan holds scratch, so each thread owns its plans.
class RealFftPlan {
 public:
  RealFftPlan(std::int64_t length, bool inverse)
      : plan_(kiss_fftr_alloc(static_cast<int>(length), inverse ? 1 : 0, nullptr, nullptr)) {
    LONGSEQ_CHECK(plan_ != nullptr, "[toeplitz_product] kiss_fftr_alloc({}) failed", length);
  }
  ~RealFftPlan() { kiss_fftr_free(plan_); }
  RealFftPlan(const RealFftPlan&) = delete;
  RealFftPlan& operator=(const RealFftPlan&) = delete;
  RealFftPlan(RealFftPlan&& other) noexcept : plan_(std::exchange(other.plan_, nullptr)) {}
  RealFftPlan& operator=(RealFftPlan&&) = delete;

  // Real (L) -> complex (L/2 + 1).
  void forward(const float* real, kiss_fft_cpx* spectrum) const {
    kiss_fftr(plan_, real, spectrum);
  }
  // Complex (L/2 + 1) -> real (L), unscaled (L times the inverse transform).
  void inverse(const kiss_fft_cpx* spectrum, float* real) const {
    kiss_fftri(plan_, spectrum, real);
  }

 private:
  kiss_fftr_cfg plan_;
};

// The plans and buffers of one thread.
struct ThreadWorkspace {
  ThreadWorkspace(std::int64_t length, std::int64_t tile_groups, bool sums)
      : forward(length, false),
        inverse(length, true),
        real(static_cast<std::size_t>(length)),
        spectrum(static_cast<std::size_t>(length / 2 + 1)),
        second(static_cast<std::size_t>(length / 2 + 1)),
        sums(sums ? static_cast<std::size_t>(tile_groups * (length / 2 + 1)) : 0) {}

  RealFftPlan forward;
  RealFftPlan inverse;
  std::vector<float> real;             // L
  std::vector<kiss_fft_cpx> spectrum;  // L/2 + 1
  std::vector<kiss_fft_cpx> second;    // L/2 + 1
  std::vector<kiss_fft_cpx> sums;      // (tile groups, L/2 + 1): grad_t spectra
};

// The tiling of the groups and the (b, g, f) columns of a tile.
struct Tiling {
  explicit Tiling(const ToeplitzShape& shape)
      : spectrum_length(shape.fft_length / 2 + 1),
        tile_groups(std::clamp<std::int64_t>(
            kSpectrumBudgetBytes /
                (spectrum_length * static_cast<std::int64_t>(sizeof(kiss_fft_cpx))),
            1, shape.groups)) {}

  std::int64_t spectrum_length;
  std::int64_t tile_groups;
};

std::complex<float> as_complex(kiss_fft_cpx c) { return {c.r, c.i}; }
kiss_fft_cpx as_cpx(std::complex<float> c) { return {c.real(), c.imag()}; }

// The circulant embedding of t[g] (n_out + n_in - 1 offsets) into `real` (L).
void embed_kernel(const ToeplitzShape& shape, const float* t, std::vector<float>& real) {
  std::fill(real.begin(), real.end(), 0.0f);
  for (std::int64_t e = 0; e < shape.offsets(); ++e) {
    real[circulant_kernel_index(toeplitz_offset(e, shape.n_out), shape.fft_length)] = t[e];
  }
}

// Column f of the (rows, F) matrix at `matrix` into `real`, zero-padded to L.
void gather_column(const float* matrix, std::int64_t rows, std::int64_t columns, std::int64_t f,
                   std::vector<float>& real) {
  for (std::int64_t i = 0; i < rows; ++i) {
    real[i] = matrix[i * columns + f];
  }
  std::fill(real.begin() + rows, real.end(), 0.0f);
}

// The first `rows` entries of `real` times `scale` into (or onto) column f of `matrix`.
void scatter_column(const std::vector<float>& real, float scale, std::int64_t rows,
                    std::int64_t columns, std::int64_t f, bool accumulate, float* matrix) {
  for (std::int64_t i = 0; i < rows; ++i) {
    const float value = real[i] * scale;
    float& out = matrix[i * columns + f];
    out = accumulate ? out + value : value;
  }
}

// The spectra of the embedded kernels of groups [g0, g0 + count) into `spectra`.
void transform_kernels(const ToeplitzShape& shape, const Tiling& tiling, const float* t,
                       std::int64_t g0, std::int64_t count, ThreadWorkspace& workspace,
                       std::vector<kiss_fft_cpx>& spectra) {
#pragma omp for schedule(static)
  for (std::int64_t g = g0; g < g0 + count; ++g) {
    embed_kernel(shape, t + g * shape.offsets(), workspace.real);
    workspace.forward.forward(workspace.real.data(),
                              spectra.data() + (g - g0) * tiling.spectrum_length);
  }
}

// The (b, g, f) column of task `task` of the tile of `count` groups from g0.
ToeplitzColumn column_of(const ToeplitzShape& shape, std::int64_t g0, std::int64_t count,
                         std::int64_t task) {
  const ToeplitzColumn local = toeplitz_column(task, count, shape.columns);
  const std::int64_t b = local.bg / count;
  const std::int64_t g = g0 + local.g;
  return {b * shape.groups + g, g, local.f};
}

std::vector<ThreadWorkspace> make_workspaces(int threads, const ToeplitzShape& shape,
                                             const Tiling& tiling, bool sums) {
  std::vector<ThreadWorkspace> workspaces;
  workspaces.reserve(static_cast<std::size_t>(threads));
  for (int i = 0; i < threads; ++i) {
    workspaces.emplace_back(shape.fft_length, tiling.tile_groups, sums);
  }
  return workspaces;
}

}  // namespace

void toeplitz_product(ComputeContext& context, const ToeplitzShape& shape, const Tensor& t,
                      const Tensor& x, const Tensor& y, bool accumulate) {
  const Tiling tiling(shape);
  const int threads = context.cpu_threads();
  std::vector<ThreadWorkspace> workspaces = make_workspaces(threads, shape, tiling, false);
  std::vector<kiss_fft_cpx> spectra(
      static_cast<std::size_t>(tiling.tile_groups * tiling.spectrum_length));
  const float* t_data = t.data<float>();
  const float* x_data = x.data<float>();
  float* y_data = y.data<float>();
  const float scale = 1.0f / static_cast<float>(shape.fft_length);
#pragma omp parallel num_threads(threads)
  {
    ThreadWorkspace& ws = workspaces[static_cast<std::size_t>(omp_get_thread_num())];
    for (std::int64_t g0 = 0; g0 < shape.groups; g0 += tiling.tile_groups) {
      const std::int64_t count = std::min(tiling.tile_groups, shape.groups - g0);
      transform_kernels(shape, tiling, t_data, g0, count, ws, spectra);
#pragma omp for schedule(static)
      for (std::int64_t task = 0; task < shape.batch * count * shape.columns; ++task) {
        const ToeplitzColumn c = column_of(shape, g0, count, task);
        const std::int64_t bg = c.bg;
        gather_column(x_data + bg * shape.n_in * shape.columns, shape.n_in, shape.columns, c.f,
                      ws.real);
        ws.forward.forward(ws.real.data(), ws.spectrum.data());
        const kiss_fft_cpx* kernel = spectra.data() + (c.g - g0) * tiling.spectrum_length;
        for (std::int64_t k = 0; k < tiling.spectrum_length; ++k) {
          ws.spectrum[k] = as_cpx(as_complex(ws.spectrum[k]) * as_complex(kernel[k]));
        }
        ws.inverse.inverse(ws.spectrum.data(), ws.real.data());
        scatter_column(ws.real, scale, shape.n_out, shape.columns, c.f, accumulate,
                       y_data + bg * shape.n_out * shape.columns);
      }
    }
  }
}

void toeplitz_product_backward(ComputeContext& context, const ToeplitzShape& shape, const Tensor& t,
                               const Tensor& x, const Tensor& grad_y, const Tensor& grad_x,
                               const Tensor& grad_t, bool accumulate) {
  const Tiling tiling(shape);
  const int threads = context.cpu_threads();
  const bool want_x = grad_x.defined();
  const bool want_t = grad_t.defined();
  std::vector<ThreadWorkspace> workspaces = make_workspaces(threads, shape, tiling, want_t);
  std::vector<kiss_fft_cpx> spectra(
      static_cast<std::size_t>(tiling.tile_groups * tiling.spectrum_length));
  const float* t_data = t.data<float>();
  const float* x_data = x.data<float>();
  const float* grad_y_data = grad_y.data<float>();
  float* grad_x_data = want_x ? grad_x.data<float>() : nullptr;
  float* grad_t_data = want_t ? grad_t.data<float>() : nullptr;
  const std::int64_t length = shape.fft_length;
  const std::int64_t spectrum_length = tiling.spectrum_length;
  const float scale = 1.0f / static_cast<float>(length);
#pragma omp parallel num_threads(threads)
  {
    ThreadWorkspace& ws = workspaces[static_cast<std::size_t>(omp_get_thread_num())];
    for (std::int64_t g0 = 0; g0 < shape.groups; g0 += tiling.tile_groups) {
      const std::int64_t count = std::min(tiling.tile_groups, shape.groups - g0);
      if (want_x) {
        transform_kernels(shape, tiling, t_data, g0, count, ws, spectra);
      }
      std::fill(ws.sums.begin(), ws.sums.end(), kiss_fft_cpx{0.0f, 0.0f});
#pragma omp for schedule(static)
      for (std::int64_t task = 0; task < shape.batch * count * shape.columns; ++task) {
        const ToeplitzColumn c = column_of(shape, g0, count, task);
        const std::int64_t bg = c.bg;
        gather_column(grad_y_data + bg * shape.n_out * shape.columns, shape.n_out, shape.columns,
                      c.f, ws.real);
        ws.forward.forward(ws.real.data(), ws.spectrum.data());  // FFT(grad_y)
        if (want_t) {
          gather_column(x_data + bg * shape.n_in * shape.columns, shape.n_in, shape.columns, c.f,
                        ws.real);
          ws.forward.forward(ws.real.data(), ws.second.data());  // FFT(x)
          kiss_fft_cpx* sum = ws.sums.data() + (c.g - g0) * spectrum_length;
          for (std::int64_t k = 0; k < spectrum_length; ++k) {
            sum[k] = as_cpx(as_complex(sum[k]) +
                            std::conj(as_complex(ws.spectrum[k])) * as_complex(ws.second[k]));
          }
        }
        if (want_x) {
          const kiss_fft_cpx* kernel = spectra.data() + (c.g - g0) * spectrum_length;
          for (std::int64_t k = 0; k < spectrum_length; ++k) {
            ws.spectrum[k] = as_cpx(as_complex(ws.spectrum[k]) * std::conj(as_complex(kernel[k])));
          }
          ws.inverse.inverse(ws.spectrum.data(), ws.real.data());
          scatter_column(ws.real, scale, shape.n_in, shape.columns, c.f, accumulate,
                         grad_x_data + bg * shape.n_in * shape.columns);
        }
      }
      if (want_t) {
        // The correlation c[m] = sum_i grad_y_i x_{i + m (mod L)}: offset o sits at m = o mod L.
#pragma omp for schedule(static)
        for (std::int64_t g = g0; g < g0 + count; ++g) {
          const std::int64_t at = (g - g0) * spectrum_length;
          for (std::int64_t k = 0; k < spectrum_length; ++k) {
            std::complex<float> total = 0.0f;
            for (const ThreadWorkspace& other : workspaces) {
              total += as_complex(other.sums[at + k]);
            }
            ws.spectrum[k] = as_cpx(total);
          }
          ws.inverse.inverse(ws.spectrum.data(), ws.real.data());
          float* row = grad_t_data + g * shape.offsets();
          for (std::int64_t o = -(shape.n_out - 1); o < shape.n_in; ++o) {
            const float value = ws.real[correlation_index(o, length)] * scale;
            float& out = row[o + shape.n_out - 1];
            out = accumulate ? out + value : value;
          }
        }
      }
    }
  }
}

}  // namespace longseq::cpu
