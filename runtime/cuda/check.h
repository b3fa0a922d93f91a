// CUDA members of the error-check family (runtime/error.h).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

#include "runtime/error.h"

namespace longseq {

inline std::string describe_cuda_status(cudaError_t status) {
  return LONGSEQ_FORMAT("{} ({})", cudaGetErrorString(status), static_cast<int>(status));
}

inline std::string describe_cublas_status(cublasStatus_t status) {
  return LONGSEQ_FORMAT("{} ({})", cublasGetStatusString(status), static_cast<int>(status));
}

}  // namespace longseq

#define CUDA_CHECK(call) LONGSEQ_CHECK_STATUS(call, cudaSuccess, ::longseq::describe_cuda_status)
#define CUBLAS_CHECK(call) \
  LONGSEQ_CHECK_STATUS(call, CUBLAS_STATUS_SUCCESS, ::longseq::describe_cublas_status)
// After a kernel launch: reports launch-configuration errors at the launch site.
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())
