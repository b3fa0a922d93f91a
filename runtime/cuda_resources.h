// The CUDA resources a ComputeContext owns. The definition of CudaResources is visible only to
// CUDA code (runtime/cuda/resources.h); everything else sees these factory functions, which the
// non-CUDA build (runtime/no_cuda.cpp) implements by throwing "not built with CUDA".
#pragma once

#include <memory>

namespace longseq {

class CudaResources;

// Defined where CudaResources is complete, so that owners need not see its definition.
struct CudaResourcesDeleter {
  void operator()(CudaResources* resources) const noexcept;
};

using CudaResourcesPtr = std::unique_ptr<CudaResources, CudaResourcesDeleter>;

CudaResourcesPtr make_cuda_resources();
void synchronize_cuda(CudaResources& resources);

}  // namespace longseq
