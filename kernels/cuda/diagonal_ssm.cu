// cuda::diagonal_ssm_vandermonde_eval / sums (kernels/diagonal_ssm.h; the dispatcher
// kernels/diagonal_ssm.cpp does the per-mode algebra and calls these two products):
//   eval   out_l = Re(sum_m coef_m exp(l z_m)) (+ direct at l = 0)
//   sums   S_m = sum_l s_l exp(l z_m),   S'_m = sum_l l s_l exp(l z_m)
// Simple and exact: every power exp(l z) is computed directly by the shared mode_power
// (kernels/common/diagonal_ssm_math.h: phase formed in double and reduced before sin / cos), so
// no error grows with l. eval: one thread per position, the (row, channel)'s modes and
// coefficients in shared memory. sums: one block per (row, channel, mode), its threads striding
// over the positions with double accumulators, then a shared-memory tree reduction.
#include <cstdint>

#include "kernels/backends.h"
#include "kernels/common/diagonal_ssm_math.h"
#include "runtime/cuda/check.h"
#include "runtime/cuda/resources.h"

namespace longseq::cuda {

namespace {

constexpr int kThreads = 256;

struct Rows {
  long long length;  // L: positions computed
  long long width;   // W >= L: row stride of out / signal
  int modes;
  int channels;
  bool reversed;
};

__device__ long long position(long long l, const Rows& g) {
  return g.reversed ? g.length - 1 - l : l;
}

__global__ void __launch_bounds__(kThreads)
    eval_kernel(Rows g, const double* modes, const float* coefficients, const float* direct,
                float* out, bool accumulate) {
  extern __shared__ double shared[];
  double* z = shared;                                       // 2M
  float* coef = reinterpret_cast<float*>(z + 2 * g.modes);  // 2M
  const long long task = blockIdx.x;
  const long long h = task % g.channels;
  for (int e = static_cast<int>(threadIdx.x); e < 2 * g.modes; e += blockDim.x) {
    z[e] = modes[h * 2 * g.modes + e];
    coef[e] = coefficients[task * 2 * g.modes + e];
  }
  __syncthreads();
  const long long l = static_cast<long long>(blockIdx.y) * blockDim.x + threadIdx.x;
  if (l >= g.length) {
    return;
  }
  float sum = 0.0f;
  for (int m = 0; m < g.modes; ++m) {
    const SsmComplex<float> power = mode_power(static_cast<double>(l), z[2 * m], z[2 * m + 1]);
    sum += real_of_product(SsmComplex<float>{coef[2 * m], coef[2 * m + 1]}, power);
  }
  if (l == 0 && direct != nullptr) {
    sum += direct[task];
  }
  float& destination = out[task * g.width + position(l, g)];
  destination = accumulate ? destination + sum : sum;
}

__global__ void __launch_bounds__(kThreads)
    sums_kernel(Rows g, const double* modes, const float* signal, float* sums, float* weighted,
                float* first) {
  __shared__ double partial[4][kThreads];
  const long long task = blockIdx.x;
  const int m = static_cast<int>(blockIdx.y);
  const long long h = task % g.channels;
  const double re = modes[(h * g.modes + m) * 2];
  const double im = modes[(h * g.modes + m) * 2 + 1];
  const float* row = signal + task * g.width;
  double acc[4] = {0.0, 0.0, 0.0, 0.0};
  for (long long l = threadIdx.x; l < g.length; l += blockDim.x) {
    const double s = row[position(l, g)];
    const SsmComplex<float> power = mode_power(static_cast<double>(l), re, im);
    acc[0] += s * power.re;
    acc[1] += s * power.im;
    acc[2] += static_cast<double>(l) * s * power.re;
    acc[3] += static_cast<double>(l) * s * power.im;
  }
  for (int k = 0; k < 4; ++k) {
    partial[k][threadIdx.x] = acc[k];
  }
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (static_cast<int>(threadIdx.x) < stride) {
      for (int k = 0; k < 4; ++k) {
        partial[k][threadIdx.x] += partial[k][threadIdx.x + stride];
      }
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    const long long out = (task * g.modes + m) * 2;
    sums[out] = static_cast<float>(partial[0][0]);
    sums[out + 1] = static_cast<float>(partial[1][0]);
    if (weighted != nullptr) {
      weighted[out] = static_cast<float>(partial[2][0]);
      weighted[out + 1] = static_cast<float>(partial[3][0]);
    }
    if (first != nullptr && m == 0) {
      first[task] = g.length > 0 ? row[position(0, g)] : 0.0f;
    }
  }
}

template <typename T>
T* optional_data(const Tensor& tensor) {
  return tensor.defined() ? tensor.data<T>() : nullptr;
}

unsigned grid_size(const char* op, const char* what, long long count, long long limit) {
  LONGSEQ_CHECK(count >= 1 && count <= limit, "[{}] {} {} outside the CUDA grid limit {}", op, what,
                count, limit);
  return static_cast<unsigned>(count);
}

}  // namespace

void diagonal_ssm_vandermonde_eval(ComputeContext& context, const Tensor& modes,
                                   const Tensor& coefficients, const Tensor& direct,
                                   std::int64_t length, bool reversed, const Tensor& out,
                                   bool accumulate) {
  constexpr const char* kOp = "diagonal_ssm_vandermonde_eval";
  const long long tasks = coefficients.size(0) * coefficients.size(1);
  if (tasks == 0 || length == 0) {
    return;
  }
  const Rows g{length, out.size(2), static_cast<int>(coefficients.size(2)),
               static_cast<int>(coefficients.size(1)), reversed};
  const dim3 grid(grid_size(kOp, "rows", tasks, 0x7fffffffLL),
                  grid_size(kOp, "position tiles", (length + kThreads - 1) / kThreads, 65535));
  const std::size_t shared =
      static_cast<std::size_t>(g.modes) * 2 * (sizeof(double) + sizeof(float));
  eval_kernel<<<grid, kThreads, shared, context.cuda().stream()>>>(
      g, modes.data<double>(), coefficients.data<float>(), optional_data<float>(direct),
      out.data<float>(), accumulate);
  CUDA_CHECK_LAUNCH();
  // The dispatcher's coefficient tensors are freed on return; make sure the stream is done.
  CUDA_CHECK(cudaStreamSynchronize(context.cuda().stream()));
}

void diagonal_ssm_vandermonde_sums(ComputeContext& context, const Tensor& modes,
                                   const Tensor& signal, std::int64_t length, bool reversed,
                                   const Tensor& sums, const Tensor& weighted_sums,
                                   const Tensor& first) {
  constexpr const char* kOp = "diagonal_ssm_vandermonde_sums";
  const long long tasks = signal.size(0) * signal.size(1);
  if (tasks == 0) {
    return;
  }
  const Rows g{length, signal.size(2), static_cast<int>(modes.size(1)),
               static_cast<int>(signal.size(1)), reversed};
  const dim3 grid(grid_size(kOp, "rows", tasks, 0x7fffffffLL),
                  grid_size(kOp, "modes", g.modes, 65535));
  sums_kernel<<<grid, kThreads, 0, context.cuda().stream()>>>(
      g, modes.data<double>(), signal.data<float>(), sums.data<float>(),
      optional_data<float>(weighted_sums), optional_data<float>(first));
  CUDA_CHECK_LAUNCH();
  // The dispatcher reads the sums on the host right after.
  CUDA_CHECK(cudaStreamSynchronize(context.cuda().stream()));
}

}  // namespace longseq::cuda
