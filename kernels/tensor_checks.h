// Argument checks shared by the operation dispatchers (kernels/*.cpp). Every message starts with
// "[op] " and names the argument and what is wrong with it. A tensor of the wrong layout is a
// programming error (Error, from LONGSEQ_CHECK); a dtype the backend does not implement is the
// user's choice (UserError, from LONGSEQ_REQUIRE).
#pragma once

#include <string_view>

#include "runtime/device.h"
#include "runtime/dtype.h"
#include "runtime/tensor.h"

namespace longseq {

// fp32, bf16 or fp16: the dtypes the CUDA kernels take (and compute in fp32).
bool is_fp32_bf16_or_fp16(DType dtype);

// `tensor` must be contiguous.
void check_contiguous(const char* op, std::string_view name, const Tensor& tensor);

// `tensor` must be contiguous with exactly this shape, dtype and device.
void check_tensor(const char* op, std::string_view name, const Tensor& tensor, const Shape& shape,
                  DType dtype, Device device);

// `tensor` must be contiguous with the shape, dtype and device of `like`.
void check_like(const char* op, std::string_view name, const Tensor& tensor, const Tensor& like);

// `dtype` (of the tensors called `name`) must be one that the implementation on `device` takes:
// fp32 on the CPU; fp32, bf16 or fp16 on CUDA.
void require_backend_dtype(const char* op, std::string_view name, DType dtype, Device device);

}  // namespace longseq
