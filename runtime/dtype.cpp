#include "runtime/dtype.h"

#include "runtime/error.h"

namespace longseq {

std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::f32:
    case DType::i32:
      return 4;
    case DType::f64:
      return 8;
    case DType::bf16:
    case DType::f16:
      return 2;
    case DType::u8:
      return 1;
  }
  LONGSEQ_CHECK(false, "[dtype] unknown dtype {}", static_cast<int>(dtype));
}

std::string_view dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return "fp32";
    case DType::f64:
      return "fp64";
    case DType::bf16:
      return "bf16";
    case DType::f16:
      return "fp16";
    case DType::i32:
      return "i32";
    case DType::u8:
      return "u8";
  }
  LONGSEQ_CHECK(false, "[dtype] unknown dtype {}", static_cast<int>(dtype));
}

DType parse_dtype(std::string_view name) {
  if (name == "fp32" || name == "f32") return DType::f32;
  if (name == "fp64" || name == "f64") return DType::f64;
  if (name == "bf16") return DType::bf16;
  if (name == "fp16" || name == "f16") return DType::f16;
  if (name == "i32") return DType::i32;
  if (name == "u8") return DType::u8;
  throw UserError(
      fmt::format("unknown dtype '{}' (expected fp32, fp64, bf16, fp16, i32 or u8)", name));
}

}  // namespace longseq
