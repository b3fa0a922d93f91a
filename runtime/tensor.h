// A strided n-dimensional array on one device. Tensors share their storage: copying a Tensor
// makes another view of the same memory; clone() copies the data.
//
// Shapes are written outermost first, e.g. attention inputs are (B, H, N, D) with D contiguous.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/device.h"
#include "runtime/dtype.h"
#include "runtime/error.h"

namespace longseq {

using Shape = std::vector<std::int64_t>;

std::string shape_string(const Shape& shape);
std::int64_t shape_numel(const Shape& shape);

// One allocation, freed when the last tensor viewing it goes away.
class Storage {
 public:
  Storage(Device device, std::size_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  [[nodiscard]] void* data() const { return data_; }
  [[nodiscard]] std::size_t bytes() const { return bytes_; }
  [[nodiscard]] Device device() const { return device_; }

 private:
  Device device_;
  std::size_t bytes_;
  void* data_;
};

class Tensor {
 public:
  Tensor() = default;

  // Uninitialised contiguous tensor.
  static Tensor empty(Shape shape, DType dtype, Device device = Device::cpu);
  static Tensor zeros(Shape shape, DType dtype, Device device = Device::cpu);
  // A contiguous fp32/fp64 CPU tensor from values (used by tests and small parameters).
  static Tensor from_vector(const std::vector<float>& values, Shape shape);

  [[nodiscard]] bool defined() const { return storage_ != nullptr || numel() == 0; }
  [[nodiscard]] const Shape& shape() const { return shape_; }
  [[nodiscard]] const Shape& strides() const { return strides_; }
  [[nodiscard]] int rank() const { return static_cast<int>(shape_.size()); }
  // Negative dimensions count from the end.
  [[nodiscard]] std::int64_t size(int dim) const;
  [[nodiscard]] std::int64_t stride(int dim) const;
  [[nodiscard]] std::int64_t numel() const { return shape_numel(shape_); }
  [[nodiscard]] DType dtype() const { return dtype_; }
  [[nodiscard]] Device device() const { return device_; }
  [[nodiscard]] std::size_t bytes() const {
    return static_cast<std::size_t>(numel()) * dtype_size(dtype_);
  }
  [[nodiscard]] bool is_contiguous() const;

  [[nodiscard]] void* raw_data() const;
  template <typename T>
  [[nodiscard]] T* data() const {
    LONGSEQ_CHECK(DTypeOf<T>::value == dtype_, "[tensor] data<{}>() on a {} tensor",
                  dtype_name(DTypeOf<T>::value), dtype_name(dtype_));
    return static_cast<T*>(raw_data());
  }

  // Views (no copy).
  [[nodiscard]] Tensor slice(int dim, std::int64_t begin, std::int64_t end) const;
  [[nodiscard]] Tensor reshape(Shape shape) const;  // contiguous tensors only

  // Copies.
  [[nodiscard]] Tensor clone() const;
  [[nodiscard]] Tensor contiguous() const;
  [[nodiscard]] Tensor to(Device device) const;
  // Converts between the floating types (CPU tensors).
  [[nodiscard]] Tensor to(DType dtype) const;
  // Copies `source` (same shape and dtype, any device) into this tensor's memory.
  void copy_from(const Tensor& source) const;
  void zero() const;

  [[nodiscard]] std::string describe() const;  // "(2, 4, 97, 64) fp32 cpu"

 private:
  std::shared_ptr<Storage> storage_;
  std::int64_t offset_ = 0;  // in elements
  Shape shape_;
  Shape strides_;
  DType dtype_ = DType::f32;
  Device device_ = Device::cpu;
};

// Converts a CPU floating tensor element to double (for references and tests).
double element_as_double(const Tensor& tensor, std::int64_t linear_index);
// Contiguous CPU copy as doubles.
std::vector<double> to_double_vector(const Tensor& tensor);

}  // namespace longseq
