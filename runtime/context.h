// What an operation needs besides its tensors: how many CPU threads it may use, and for CUDA
// tensors the stream and library handles to run on. Created by the caller and passed explicitly.
#pragma once

#include "runtime/cuda_resources.h"

namespace longseq {

class ComputeContext {
 public:
  // cpu_threads = 0 uses every core.
  explicit ComputeContext(int cpu_threads = 0);
  ~ComputeContext();
  ComputeContext(const ComputeContext&) = delete;
  ComputeContext& operator=(const ComputeContext&) = delete;

  [[nodiscard]] int cpu_threads() const { return cpu_threads_; }
  // Created on first use; throws Error when CUDA is not built or no GPU is present.
  CudaResources& cuda();
  // Waits for all work queued on the CUDA stream (no-op when CUDA was never used).
  void synchronize();

 private:
  int cpu_threads_;
  CudaResourcesPtr cuda_;
};

}  // namespace longseq
