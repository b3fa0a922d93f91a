// RAII owners of CUDA handles: each is created in the constructor and destroyed exactly once.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <utility>

#include "runtime/cuda/check.h"

namespace longseq {

// Owns one handle of type Handle, destroyed by Destroy; movable, not copyable.
template <typename Handle, auto Destroy>
class CudaHandle {
 public:
  CudaHandle() = default;
  explicit CudaHandle(Handle handle) : handle_(handle) {}
  ~CudaHandle() { reset(); }
  CudaHandle(const CudaHandle&) = delete;
  CudaHandle& operator=(const CudaHandle&) = delete;
  CudaHandle(CudaHandle&& other) noexcept : handle_(std::exchange(other.handle_, Handle{})) {}
  CudaHandle& operator=(CudaHandle&& other) noexcept {
    if (this != &other) {
      reset();
      handle_ = std::exchange(other.handle_, Handle{});
    }
    return *this;
  }
  [[nodiscard]] Handle get() const { return handle_; }

 private:
  void reset() noexcept {
    if (handle_ != Handle{}) {
      Destroy(handle_);  // errors at destruction cannot be reported; the handle is gone either way
      handle_ = Handle{};
    }
  }
  Handle handle_{};
};

class CudaStream {
 public:
  CudaStream() {
    cudaStream_t stream = nullptr;
    // A blocking stream: the runtime's synchronous copies and memsets (Tensor::to, zeros) run on
    // the legacy default stream and must be ordered with the kernels queued here.
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamDefault));
    stream_ = Owned(stream);
  }
  [[nodiscard]] cudaStream_t get() const { return stream_.get(); }
  void synchronize() const { CUDA_CHECK(cudaStreamSynchronize(stream_.get())); }

 private:
  using Owned = CudaHandle<cudaStream_t, cudaStreamDestroy>;
  Owned stream_;
};

class CudaEvent {
 public:
  CudaEvent() {
    cudaEvent_t event = nullptr;
    CUDA_CHECK(cudaEventCreate(&event));
    event_ = Owned(event);
  }
  [[nodiscard]] cudaEvent_t get() const { return event_.get(); }
  void record(cudaStream_t stream) const { CUDA_CHECK(cudaEventRecord(event_.get(), stream)); }
  void synchronize() const { CUDA_CHECK(cudaEventSynchronize(event_.get())); }
  // Milliseconds from `start` to this event (both recorded and complete).
  [[nodiscard]] float milliseconds_since(const CudaEvent& start) const {
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start.get(), event_.get()));
    return ms;
  }

 private:
  using Owned = CudaHandle<cudaEvent_t, cudaEventDestroy>;
  Owned event_;
};

class CublasHandle {
 public:
  CublasHandle() {
    cublasHandle_t handle = nullptr;
    CUBLAS_CHECK(cublasCreate(&handle));
    handle_ = Owned(handle);
  }
  [[nodiscard]] cublasHandle_t get() const { return handle_.get(); }

 private:
  using Owned = CudaHandle<cublasHandle_t, cublasDestroy>;
  Owned handle_;
};

}  // namespace longseq
