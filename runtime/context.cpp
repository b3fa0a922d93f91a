#include "runtime/context.h"

#include <algorithm>
#include <thread>

namespace longseq {

ComputeContext::ComputeContext(int cpu_threads)
    : cpu_threads_(cpu_threads > 0
                       ? cpu_threads
                       : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))) {}

ComputeContext::~ComputeContext() = default;

CudaResources& ComputeContext::cuda() {
  if (!cuda_) {
    cuda_ = make_cuda_resources();
  }
  return *cuda_;
}

void ComputeContext::synchronize() {
  if (cuda_) {
    synchronize_cuda(*cuda_);
  }
}

}  // namespace longseq
