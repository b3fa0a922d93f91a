// CUDA members of the error-check family (runtime/error.h).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cufft.h>

#include <string>

#include "runtime/error.h"

namespace longseq {

inline std::string describe_cuda_status(cudaError_t status) {
  return LONGSEQ_FORMAT("{} ({})", cudaGetErrorString(status), static_cast<int>(status));
}

inline std::string describe_cublas_status(cublasStatus_t status) {
  return LONGSEQ_FORMAT("{} ({})", cublasGetStatusString(status), static_cast<int>(status));
}

// cuFFT has no status-string function: the names of its result codes.
inline std::string describe_cufft_status(cufftResult status) {
  const char* name = "unknown cuFFT result";
  switch (status) {
    case CUFFT_SUCCESS:
      name = "CUFFT_SUCCESS";
      break;
    case CUFFT_INVALID_PLAN:
      name = "CUFFT_INVALID_PLAN";
      break;
    case CUFFT_ALLOC_FAILED:
      name = "CUFFT_ALLOC_FAILED";
      break;
    case CUFFT_INVALID_VALUE:
      name = "CUFFT_INVALID_VALUE";
      break;
    case CUFFT_INTERNAL_ERROR:
      name = "CUFFT_INTERNAL_ERROR";
      break;
    case CUFFT_EXEC_FAILED:
      name = "CUFFT_EXEC_FAILED";
      break;
    case CUFFT_SETUP_FAILED:
      name = "CUFFT_SETUP_FAILED";
      break;
    case CUFFT_INVALID_SIZE:
      name = "CUFFT_INVALID_SIZE";
      break;
    default:
      break;
  }
  return LONGSEQ_FORMAT("{} ({})", name, static_cast<int>(status));
}

}  // namespace longseq

#define CUDA_CHECK(call) \
  LONGSEQ_CHECK_STATUS_TEXT(call, #call, cudaSuccess, ::longseq::describe_cuda_status)
#define CUBLAS_CHECK(call) \
  LONGSEQ_CHECK_STATUS_TEXT(call, #call, CUBLAS_STATUS_SUCCESS, ::longseq::describe_cublas_status)
#define CUFFT_CHECK(call) \
  LONGSEQ_CHECK_STATUS_TEXT(call, #call, CUFFT_SUCCESS, ::longseq::describe_cufft_status)
// After a kernel launch: reports launch-configuration errors at the launch site.
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())
