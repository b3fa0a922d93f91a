// cuda::merge_attention_forward / backward (MECHANISMS.md section 2): one warp per row of
// (B, H, N); each lane reads every partial LSE of its row before any lane writes, so out / lse may
// alias outs[0] / lses[0]. The dispatcher (kernels/merge.cpp) has checked shapes and dtypes.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/backends.h"
#include "kernels/common/softmax_math.h"
#include "runtime/cuda/check.h"
#include "runtime/cuda/resources.h"

namespace longseq::cuda {

namespace {

constexpr int kMergeThreads = 256;
constexpr int kRowsPerBlock = kMergeThreads / 32;

// Device pointers of the partials: outs[s] (rows, head_dim) and lses[s] (rows), fp32.
struct Partials {
  const float* const* outs;
  const float* const* lses;
  float* const* grad_outs;  // backward only
  float* const* grad_lses;  // backward only
  int count;
};

__device__ __forceinline__ float merged_lse(const Partials& partials, long long row) {
  // log sum_s exp(LSE_s), starting from the identity -inf.
  float lse = negative_infinity();
  for (int s = 0; s < partials.count; ++s) {
    lse = log_add_exp(lse, partials.lses[s][row]);
  }
  return lse;
}

__global__ void merge_forward_kernel(Partials partials, float* out, float* lse, long long rows,
                                     long long head_dim) {
  const long long row = static_cast<long long>(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;
  const int lane = static_cast<int>(threadIdx.x % 32);
  if (row >= rows) {
    return;
  }
  const float total = merged_lse(partials, row);
  for (long long i = lane; i < head_dim; i += 32) {
    float value = 0.0f;
    for (int s = 0; s < partials.count; ++s) {
      value += merge_weight(partials.lses[s][row], total) * partials.outs[s][row * head_dim + i];
    }
    out[row * head_dim + i] = value;
  }
  __syncwarp();  // every lane has read the partial LSEs
  if (lane == 0) {
    lse[row] = total;
  }
}

// w_s = exp(LSE_s - LSE), dO_s = w_s dO, dLSE_s = w_s (<dO, O_s - O> + dLSE).
__global__ void merge_backward_kernel(Partials partials, const float* grad_out,
                                      const float* grad_lse, const float* out, const float* lse,
                                      long long rows, long long head_dim) {
  const long long row = static_cast<long long>(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;
  const int lane = static_cast<int>(threadIdx.x % 32);
  if (row >= rows) {
    return;
  }
  const float total = lse[row];
  const float grad_total = grad_lse != nullptr ? grad_lse[row] : 0.0f;
  for (int s = 0; s < partials.count; ++s) {
    const float weight = merge_weight(partials.lses[s][row], total);
    float dot = 0.0f;
    for (long long i = lane; i < head_dim; i += 32) {
      const long long index = row * head_dim + i;
      dot += grad_out[index] * (partials.outs[s][index] - out[index]);
    }
    for (int offset = 16; offset > 0; offset /= 2) {
      dot += __shfl_xor_sync(0xffffffffu, dot, offset);
    }
    for (long long i = lane; i < head_dim; i += 32) {
      const long long index = row * head_dim + i;
      partials.grad_outs[s][index] = weight * grad_out[index];
    }
    if (lane == 0) {
      partials.grad_lses[s][row] = weight * (dot + grad_total);
    }
  }
}

// The partials' pointer tables on the device, one allocation for all four.
class PointerTable {
 public:
  PointerTable(const std::vector<const void*>& pointers, cudaStream_t stream)
      : table_(Tensor::empty({static_cast<std::int64_t>(pointers.size() * sizeof(void*))},
                             DType::u8, Device::cuda)) {
    // Stream-ordered; from pageable memory the call returns once `pointers` has been staged.
    CUDA_CHECK(cudaMemcpyAsync(table_.raw_data(), pointers.data(), pointers.size() * sizeof(void*),
                               cudaMemcpyHostToDevice, stream));
  }
  [[nodiscard]] void* const* at(std::size_t index) const {
    return static_cast<void* const*>(table_.raw_data()) + index;
  }

 private:
  Tensor table_;
};

}  // namespace

void merge_attention_forward(ComputeContext& context, std::span<const Tensor> outs,
                             std::span<const Tensor> lses, const Tensor& out, const Tensor& lse) {
  const long long rows = lse.numel();
  const long long head_dim = out.size(-1);
  const std::size_t count = outs.size();
  if (rows == 0 || count == 0) {
    return;
  }
  const cudaStream_t stream = context.cuda().stream();
  std::vector<const void*> pointers;
  for (const Tensor& partial : outs) {
    pointers.push_back(partial.raw_data());
  }
  for (const Tensor& partial : lses) {
    pointers.push_back(partial.raw_data());
  }
  const PointerTable table(pointers, stream);
  const Partials partials{reinterpret_cast<const float* const*>(table.at(0)),
                          reinterpret_cast<const float* const*>(table.at(count)), nullptr, nullptr,
                          static_cast<int>(count)};
  const auto blocks = static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock);
  merge_forward_kernel<<<blocks, kMergeThreads, 0, stream>>>(partials, out.data<float>(),
                                                             lse.data<float>(), rows, head_dim);
  CUDA_CHECK_LAUNCH();
  // The pointer table is freed on return; make sure the stream is done with it.
  CUDA_CHECK(cudaStreamSynchronize(stream));
}

void merge_attention_backward(ComputeContext& context, const Tensor& grad_out,
                              const Tensor& grad_lse, std::span<const Tensor> outs,
                              std::span<const Tensor> lses, const Tensor& out, const Tensor& lse,
                              std::span<const Tensor> grad_outs,
                              std::span<const Tensor> grad_lses) {
  const long long rows = lse.numel();
  const long long head_dim = out.size(-1);
  const std::size_t count = outs.size();
  if (rows == 0 || count == 0) {
    return;
  }
  const cudaStream_t stream = context.cuda().stream();
  std::vector<const void*> pointers;
  for (const auto* group : {&outs, &lses, &grad_outs, &grad_lses}) {
    for (const Tensor& tensor : *group) {
      pointers.push_back(tensor.raw_data());
    }
  }
  const PointerTable table(pointers, stream);
  const Partials partials{reinterpret_cast<const float* const*>(table.at(0)),
                          reinterpret_cast<const float* const*>(table.at(count)),
                          reinterpret_cast<float* const*>(table.at(2 * count)),
                          reinterpret_cast<float* const*>(table.at(3 * count)),
                          static_cast<int>(count)};
  const auto blocks = static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock);
  merge_backward_kernel<<<blocks, kMergeThreads, 0, stream>>>(
      partials, grad_out.data<float>(),
      grad_lse.defined() && grad_lse.numel() > 0 ? grad_lse.data<float>() : nullptr,
      out.data<float>(), lse.data<float>(), rows, head_dim);
  CUDA_CHECK_LAUNCH();
  // The pointer table is freed on return; make sure the stream is done with it.
  CUDA_CHECK(cudaStreamSynchronize(stream));
}

}  // namespace longseq::cuda
