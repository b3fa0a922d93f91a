// The CUDA stream and library handles of one ComputeContext.
#pragma once

#include "runtime/cuda/handles.h"

namespace longseq {

class CudaResources {
 public:
  CudaResources() { CUBLAS_CHECK(cublasSetStream(cublas_.get(), stream_.get())); }
  [[nodiscard]] cudaStream_t stream() const { return stream_.get(); }
  [[nodiscard]] cublasHandle_t cublas() const { return cublas_.get(); }

 private:
  CudaStream stream_;
  CublasHandle cublas_;
};

}  // namespace longseq
