// The CUDA side of the runtime: device queries, memory, and the resources of a ComputeContext.
#include <cuda_runtime.h>

#include "runtime/cuda/resources.h"
#include "runtime/cuda_resources.h"
#include "runtime/device.h"
#include "runtime/memory.h"

namespace longseq {

namespace {

cudaMemcpyKind copy_kind(Device destination, Device source) {
  if (source == Device::cpu) {
    return destination == Device::cpu ? cudaMemcpyHostToHost : cudaMemcpyHostToDevice;
  }
  return destination == Device::cpu ? cudaMemcpyDeviceToHost : cudaMemcpyDeviceToDevice;
}

}  // namespace

bool cuda_built() { return true; }

int cuda_device_count() {
  int count = 0;  // cudaGetDeviceCount leaves it untouched when there is no driver
  return cudaGetDeviceCount(&count) == cudaSuccess ? count : 0;
}

std::string cuda_unavailable_reason() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    return LONGSEQ_FORMAT("cudaGetDeviceCount: {}", describe_cuda_status(status));
  }
  return count == 0 ? "no CUDA device" : "";
}

std::string cuda_device_description() {
  const std::string reason = cuda_unavailable_reason();
  if (!reason.empty()) {
    return reason;
  }
  cudaDeviceProp properties{};
  CUDA_CHECK(cudaGetDeviceProperties(&properties, 0));
  return LONGSEQ_FORMAT("{} (sm_{}{}, {} GiB, {} SMs)", properties.name, properties.major,
                        properties.minor, properties.totalGlobalMem >> 30,
                        properties.multiProcessorCount);
}

void* cuda_allocate(std::size_t bytes) {
  void* pointer = nullptr;
  CUDA_CHECK(cudaMalloc(&pointer, bytes));
  return pointer;
}

void cuda_deallocate(void* pointer) noexcept { cudaFree(pointer); }

void cuda_copy(void* destination, Device destination_device, const void* source,
               Device source_device, std::size_t bytes) {
  CUDA_CHECK(cudaMemcpy(destination, source, bytes, copy_kind(destination_device, source_device)));
}

void cuda_fill_zero(void* destination, std::size_t bytes) {
  CUDA_CHECK(cudaMemset(destination, 0, bytes));
}

void CudaResourcesDeleter::operator()(CudaResources* resources) const noexcept { delete resources; }

CudaResourcesPtr make_cuda_resources() {
  const std::string reason = cuda_unavailable_reason();
  if (!reason.empty()) {
    throw Error("[cuda] no usable GPU: " + reason);
  }
  return CudaResourcesPtr(new CudaResources());
}

void synchronize_cuda(CudaResources& resources) {
  CUDA_CHECK(cudaStreamSynchronize(resources.stream()));
}

}  // namespace longseq
