// Softmax cross-entropy on CUDA: one block per row. The forward pass reads each logit once: every
// thread keeps a running (maximum, sum of exponentials) over its logits and a block reduction
// merges them (kernels/common/cross_entropy_math.h). Logits are fp32, bf16 or fp16, computed in
// fp32; losses and lse are fp32.
#include <cstdint>
#include <cub/block/block_reduce.cuh>
#include <vector>

#include "kernels/backends.h"
#include "kernels/common/cross_entropy_math.h"
#include "kernels/cuda/element.cuh"
#include "runtime/cuda/resources.h"

namespace longseq::cuda {

namespace {

constexpr int kRowThreads = 256;

struct MergeSoftmaxPartials {
  __device__ SoftmaxPartial operator()(const SoftmaxPartial& a, const SoftmaxPartial& b) const {
    return merge_softmax_partials(a, b);
  }
};

template <typename T>
__global__ void __launch_bounds__(kRowThreads)
    cross_entropy_forward_kernel(std::int64_t vocabulary, const T* logits,
                                 const std::int32_t* targets, float* losses, float* lse) {
  using PartialReduce = cub::BlockReduce<SoftmaxPartial, kRowThreads>;
  __shared__ typename PartialReduce::TempStorage reduce_storage;
  const std::int64_t row = blockIdx.x;
  const T* row_logits = logits + row * vocabulary;  // (V)
  SoftmaxPartial partial = empty_softmax_partial();
  for (std::int64_t j = threadIdx.x; j < vocabulary; j += kRowThreads) {
    partial = add_logit(partial, element_to_float(row_logits[j]));
  }
  partial = PartialReduce(reduce_storage).Reduce(partial, MergeSoftmaxPartials{});
  if (threadIdx.x == 0) {
    const float row_lse = finish_lse(partial.maximum, partial.sum);
    lse[row] = row_lse;
    const std::int32_t target = targets[row];
    losses[row] = target_ignored(target)
                      ? 0.0f
                      : cross_entropy_loss(row_lse, element_to_float(row_logits[target]));
  }
}

template <typename T>
__global__ void __launch_bounds__(kRowThreads)
    cross_entropy_backward_kernel(std::int64_t vocabulary, const float* grad_losses,
                                  const T* logits, const std::int32_t* targets, const float* lse,
                                  T* grad_logits) {
  const std::int64_t row = blockIdx.x;
  const T* row_logits = logits + row * vocabulary;  // (V)
  T* row_grad = grad_logits + row * vocabulary;     // (V)
  const std::int32_t target = targets[row];
  // An ignored row has no gradient at all (grad_losses of that row notwithstanding).
  const float grad_loss = target_ignored(target) ? 0.0f : grad_losses[row];
  const float row_lse = lse[row];
  for (std::int64_t j = threadIdx.x; j < vocabulary; j += kRowThreads) {
    row_grad[j] = element_from_float<T>(
        cross_entropy_grad_logit(grad_loss, element_to_float(row_logits[j]), row_lse, j == target));
  }
}

}  // namespace

void cross_entropy_forward(ComputeContext& context, const Tensor& logits, const Tensor& targets,
                           const Tensor& losses, const Tensor& lse) {
  constexpr const char* op = "cross_entropy_forward";
  const std::int64_t rows = logits.size(0);
  const std::int64_t vocabulary = logits.size(1);
  if (rows == 0) {
    return;
  }
  const unsigned int blocks = row_blocks(op, rows);
  const cudaStream_t stream = context.cuda().stream();
  // The targets are bad data when out of range, which the user must hear about as an error rather
  // than as a wrong loss: they are checked on the host (a copy of R ints and one stream wait).
  std::vector<std::int32_t> host_targets(static_cast<std::size_t>(rows));
  CUDA_CHECK(cudaMemcpyAsync(host_targets.data(), targets.data<std::int32_t>(),
                             host_targets.size() * sizeof(std::int32_t), cudaMemcpyDeviceToHost,
                             stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  require_targets_in_vocabulary(op, host_targets.data(), rows, vocabulary);
  dispatch_floating(op, logits.dtype(), [&](auto element) {
    using T = decltype(element);
    cross_entropy_forward_kernel<T><<<blocks, kRowThreads, 0, stream>>>(
        vocabulary, logits.data<T>(), targets.data<std::int32_t>(), losses.data<float>(),
        lse.data<float>());
    CUDA_CHECK_LAUNCH();
  });
}

// The backward kernel never indexes by target (it compares column and target), so it needs no
// range check of its own: an out-of-range target was already rejected by the forward pass.
void cross_entropy_backward(ComputeContext& context, const Tensor& grad_losses,
                            const Tensor& logits, const Tensor& targets, const Tensor& lse,
                            const Tensor& grad_logits) {
  constexpr const char* op = "cross_entropy_backward";
  const std::int64_t rows = logits.size(0);
  const std::int64_t vocabulary = logits.size(1);
  if (rows == 0) {
    return;
  }
  const unsigned int blocks = row_blocks(op, rows);
  const cudaStream_t stream = context.cuda().stream();
  dispatch_floating(op, logits.dtype(), [&](auto element) {
    using T = decltype(element);
    cross_entropy_backward_kernel<T><<<blocks, kRowThreads, 0, stream>>>(
        vocabulary, grad_losses.data<float>(), logits.data<T>(), targets.data<std::int32_t>(),
        lse.data<float>(), grad_logits.data<T>());
    CUDA_CHECK_LAUNCH();
  });
}

}  // namespace longseq::cuda
