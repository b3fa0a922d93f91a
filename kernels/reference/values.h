// Element access shared by the reference implementations: every reference reads its inputs as
// doubles and rounds its results to the output tensors' dtype only when storing them.
#pragma once

#include <algorithm>
#include <vector>

#include "runtime/tensor.h"

namespace longseq::reference {

// The elements of a CPU floating tensor as doubles, row-major.
inline std::vector<double> values_of(const char* op, const Tensor& tensor) {
  LONGSEQ_CHECK(tensor.device() == Device::cpu, "[{}] references take CPU tensors, got {}", op,
                tensor.describe());
  return to_double_vector(tensor);
}

// Writes `values` (row-major) into a CPU floating tensor, rounding to its dtype.
inline void store(const char* op, const Tensor& destination, const std::vector<double>& values) {
  LONGSEQ_CHECK(destination.device() == Device::cpu &&
                    static_cast<std::int64_t>(values.size()) == destination.numel(),
                "[{}] cannot store {} values into {}", op, values.size(), destination.describe());
  const Tensor staged = Tensor::empty(destination.shape(), DType::f64);
  std::copy(values.begin(), values.end(), staged.data<double>());
  destination.copy_from(staged.to(destination.dtype()));
}

inline void check_shape(const char* op, const char* name, const Tensor& tensor,
                        const Shape& shape) {
  LONGSEQ_CHECK(tensor.shape() == shape, "[{}] {} must have shape {}, got {}", op, name,
                shape_string(shape), tensor.describe());
}

}  // namespace longseq::reference
