// CUDA element types of the floating dtypes, their float conversions, a dtype dispatch, and the
// grid sizes of the element-wise and row-wise kernels.
// __nv_bfloat16 / __half have the same bits as the host types BFloat16 / Half (runtime/dtype.h).
#pragma once

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>

#include "runtime/dtype.h"
#include "runtime/error.h"

namespace longseq {

// Lets Tensor::data<T>() hand out the CUDA element types of bf16 / fp16 tensors.
template <>
struct DTypeOf<__nv_bfloat16> {
  static constexpr DType value = DType::bf16;
};
template <>
struct DTypeOf<__half> {
  static constexpr DType value = DType::f16;
};

}  // namespace longseq

namespace longseq::cuda {

template <typename T>
struct ElementTraits;
template <>
struct ElementTraits<float> {
  static constexpr cudaDataType_t cublas_type = CUDA_R_32F;
};
template <>
struct ElementTraits<__nv_bfloat16> {
  static constexpr cudaDataType_t cublas_type = CUDA_R_16BF;
};
template <>
struct ElementTraits<__half> {
  static constexpr cudaDataType_t cublas_type = CUDA_R_16F;
};

__device__ __forceinline__ float element_to_float(float value) { return value; }
__device__ __forceinline__ float element_to_float(__nv_bfloat16 value) {
  return __bfloat162float(value);
}
__device__ __forceinline__ float element_to_float(__half value) { return __half2float(value); }

template <typename T>
__device__ __forceinline__ T element_from_float(float value);
template <>
__device__ __forceinline__ float element_from_float<float>(float value) {
  return value;
}
template <>
__device__ __forceinline__ __nv_bfloat16 element_from_float<__nv_bfloat16>(float value) {
  return __float2bfloat16_rn(value);
}
template <>
__device__ __forceinline__ __half element_from_float<__half>(float value) {
  return __float2half_rn(value);
}

inline cudaDataType_t cublas_type(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return CUDA_R_32F;
    case DType::bf16:
      return CUDA_R_16BF;
    case DType::f16:
      return CUDA_R_16F;
    default:
      throw Error(LONGSEQ_FORMAT("[cuda] no cuBLAS type for dtype {}", dtype_name(dtype)));
  }
}

// Calls function(T{}) with the CUDA element type T of a floating dtype (fp32, bf16, fp16).
template <typename Function>
decltype(auto) dispatch_floating(const char* op, DType dtype, Function&& function) {
  switch (dtype) {
    case DType::f32:
      return std::forward<Function>(function)(float{});
    case DType::bf16:
      return std::forward<Function>(function)(__nv_bfloat16{});
    case DType::f16:
      return std::forward<Function>(function)(__half{});
    default:
      throw Error(LONGSEQ_FORMAT("[{}] unsupported dtype {} on CUDA", op, dtype_name(dtype)));
  }
}

// Blocks of a grid-stride loop over `count` elements: enough to fill any current GPU several times
// over; larger tensors loop in the kernel.
inline unsigned int grid_stride_blocks(std::int64_t count, int threads) {
  constexpr std::int64_t kMaxBlocks = 8192;
  return static_cast<unsigned int>(std::min(kMaxBlocks, (count + threads - 1) / threads));
}

// Blocks of a one-block-per-row kernel.
inline unsigned int row_blocks(const char* op, std::int64_t rows) {
  LONGSEQ_CHECK(rows <= std::numeric_limits<int>::max(), "[{}] {} rows exceed one CUDA grid", op,
                rows);
  return static_cast<unsigned int>(rows);
}

}  // namespace longseq::cuda
