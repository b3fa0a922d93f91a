#include "kernels/tensor_checks.h"

#include "runtime/error.h"

namespace longseq {

bool is_fp32_bf16_or_fp16(DType dtype) {
  return dtype == DType::f32 || dtype == DType::bf16 || dtype == DType::f16;
}

void check_contiguous(const char* op, std::string_view name, const Tensor& tensor) {
  LONGSEQ_CHECK(tensor.is_contiguous(), "[{}] {} must be contiguous, got {}", op, name,
                tensor.describe());
}

void check_tensor(const char* op, std::string_view name, const Tensor& tensor, const Shape& shape,
                  DType dtype, Device device) {
  LONGSEQ_CHECK(tensor.shape() == shape && tensor.dtype() == dtype && tensor.device() == device &&
                    tensor.is_contiguous(),
                "[{}] {} must be a contiguous {} {} {}, got {}", op, name, shape_string(shape),
                dtype_name(dtype), device_name(device), tensor.describe());
}

void check_like(const char* op, std::string_view name, const Tensor& tensor, const Tensor& like) {
  check_tensor(op, name, tensor, like.shape(), like.dtype(), like.device());
}

void require_backend_dtype(const char* op, std::string_view name, DType dtype, Device device) {
  if (device == Device::cpu) {
    LONGSEQ_REQUIRE(dtype == DType::f32, "[{}] the CPU implementation takes fp32 {}, got {}", op,
                    name, dtype_name(dtype));
  } else {
    LONGSEQ_REQUIRE(is_fp32_bf16_or_fp16(dtype),
                    "[{}] the CUDA implementation takes fp32, bf16 or fp16 {}, got {}", op, name,
                    dtype_name(dtype));
  }
}

}  // namespace longseq
