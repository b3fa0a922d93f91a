// The CUDA side of the runtime in a build without CUDA: no devices, and a clear error on use.
#include "runtime/cuda_resources.h"
#include "runtime/device.h"
#include "runtime/error.h"
#include "runtime/memory.h"

namespace longseq {

namespace {

[[noreturn]] void not_built(const char* what) {
  throw Error(fmt::format("[{}] longseq was not built with CUDA", what));
}

}  // namespace

bool cuda_built() { return false; }
int cuda_device_count() { return 0; }
std::string cuda_unavailable_reason() { return "not built with CUDA"; }
std::string cuda_device_description() { return "not built with CUDA"; }

void* cuda_allocate(std::size_t) { not_built("cuda_allocate"); }
void cuda_deallocate(void*) noexcept {}
void cuda_copy(void*, Device, const void*, Device, std::size_t) { not_built("cuda_copy"); }
void cuda_fill_zero(void*, std::size_t) { not_built("cuda_fill_zero"); }

class CudaResources {};
void CudaResourcesDeleter::operator()(CudaResources* resources) const noexcept { delete resources; }
CudaResourcesPtr make_cuda_resources() { not_built("cuda"); }
void synchronize_cuda(CudaResources&) { not_built("cuda"); }

}  // namespace longseq
