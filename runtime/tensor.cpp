#include "runtime/tensor.h"

#include <cstring>

#include "runtime/memory.h"

namespace longseq {

std::string shape_string(const Shape& shape) {
  std::string text = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    text += (i == 0 ? "" : ", ") + std::to_string(shape[i]);
  }
  return text + ")";
}

std::int64_t shape_numel(const Shape& shape) {
  std::int64_t count = 1;
  for (const std::int64_t extent : shape) {
    count *= extent;
  }
  return count;
}

namespace {

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  std::int64_t stride = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= shape[i];
  }
  return strides;
}

template <typename To, typename From>
To convert_element(From value) {
  if constexpr (std::is_same_v<From, BFloat16> || std::is_same_v<From, Half>) {
    return convert_element<To>(to_float(value));
  } else if constexpr (std::is_same_v<To, BFloat16>) {
    return to_bfloat16(static_cast<float>(value));
  } else if constexpr (std::is_same_v<To, Half>) {
    return to_half(static_cast<float>(value));
  } else {
    return static_cast<To>(value);
  }
}

template <typename Function>
void visit_dtype(DType dtype, Function&& function) {
  switch (dtype) {
    case DType::f32:
      return function(float{});
    case DType::f64:
      return function(double{});
    case DType::bf16:
      return function(BFloat16{});
    case DType::f16:
      return function(Half{});
    case DType::i32:
      return function(std::int32_t{});
    case DType::u8:
      return function(std::uint8_t{});
  }
}

// Calls visit(linear_index, element_offset) over all elements of a strided CPU tensor.
template <typename Visit>
void for_each_offset(const Shape& shape, const Shape& strides, Visit&& visit) {
  const std::int64_t count = shape_numel(shape);
  std::vector<std::int64_t> index(shape.size(), 0);
  std::int64_t offset = 0;
  for (std::int64_t linear = 0; linear < count; ++linear) {
    visit(linear, offset);
    for (std::size_t d = shape.size(); d-- > 0;) {
      if (++index[d] < shape[d]) {
        offset += strides[d];
        break;
      }
      offset -= strides[d] * (shape[d] - 1);
      index[d] = 0;
    }
  }
}

}  // namespace

Storage::Storage(Device device, std::size_t bytes)
    : device_(device), bytes_(bytes), data_(allocate(device, bytes)) {}

Storage::~Storage() { deallocate(device_, data_, bytes_); }

Tensor Tensor::empty(Shape shape, DType dtype, Device device) {
  for (const std::int64_t extent : shape) {
    LONGSEQ_CHECK(extent >= 0, "[tensor] negative extent in shape {}", shape_string(shape));
  }
  Tensor tensor;
  tensor.storage_ = std::make_shared<Storage>(
      device, static_cast<std::size_t>(shape_numel(shape)) * dtype_size(dtype));
  tensor.strides_ = contiguous_strides(shape);
  tensor.shape_ = std::move(shape);
  tensor.dtype_ = dtype;
  tensor.device_ = device;
  return tensor;
}

Tensor Tensor::zeros(Shape shape, DType dtype, Device device) {
  Tensor tensor = empty(std::move(shape), dtype, device);
  tensor.zero();
  return tensor;
}

Tensor Tensor::from_vector(const std::vector<float>& values, Shape shape) {
  LONGSEQ_CHECK(static_cast<std::int64_t>(values.size()) == shape_numel(shape),
                "[tensor] {} values for shape {}", values.size(), shape_string(shape));
  Tensor tensor = empty(std::move(shape), DType::f32);
  std::memcpy(tensor.raw_data(), values.data(), values.size() * sizeof(float));
  return tensor;
}

std::int64_t Tensor::size(int dim) const {
  const int d = dim < 0 ? dim + rank() : dim;
  LONGSEQ_CHECK(d >= 0 && d < rank(), "[tensor] dimension {} of a rank-{} tensor", dim, rank());
  return shape_[d];
}

std::int64_t Tensor::stride(int dim) const {
  const int d = dim < 0 ? dim + rank() : dim;
  LONGSEQ_CHECK(d >= 0 && d < rank(), "[tensor] dimension {} of a rank-{} tensor", dim, rank());
  return strides_[d];
}

bool Tensor::is_contiguous() const {
  std::int64_t expected = 1;
  for (std::size_t i = shape_.size(); i-- > 0;) {
    if (shape_[i] != 1 && strides_[i] != expected) {
      return false;
    }
    expected *= shape_[i];
  }
  return true;
}

void* Tensor::raw_data() const {
  if (storage_ == nullptr) {
    return nullptr;
  }
  return static_cast<char*>(storage_->data()) +
         offset_ * static_cast<std::int64_t>(dtype_size(dtype_));
}

Tensor Tensor::slice(int dim, std::int64_t begin, std::int64_t end) const {
  const int d = dim < 0 ? dim + rank() : dim;
  LONGSEQ_CHECK(d >= 0 && d < rank() && 0 <= begin && begin <= end && end <= shape_[d],
                "[tensor] slice [{}, {}) of dimension {} of {}", begin, end, dim, describe());
  Tensor view = *this;
  view.offset_ += begin * strides_[d];
  view.shape_[d] = end - begin;
  return view;
}

Tensor Tensor::reshape(Shape shape) const {
  LONGSEQ_CHECK(is_contiguous(), "[tensor] reshape of a non-contiguous {}", describe());
  LONGSEQ_CHECK(shape_numel(shape) == numel(), "[tensor] reshape of {} to {}", describe(),
                shape_string(shape));
  Tensor view = *this;
  view.strides_ = contiguous_strides(shape);
  view.shape_ = std::move(shape);
  return view;
}

Tensor Tensor::clone() const {
  Tensor copy = empty(shape_, dtype_, device_);
  copy.copy_from(*this);
  return copy;
}

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

Tensor Tensor::to(Device device) const {
  if (device == device_) {
    return *this;
  }
  Tensor copy = empty(shape_, dtype_, device);
  copy.copy_from(*this);
  return copy;
}

Tensor Tensor::to(DType dtype) const {
  LONGSEQ_CHECK(device_ == Device::cpu, "[tensor] dtype conversion of a {} tensor",
                device_name(device_));
  if (dtype == dtype_) {
    return *this;
  }
  Tensor result = empty(shape_, dtype, Device::cpu);
  const char* source = static_cast<const char*>(raw_data());
  char* destination = static_cast<char*>(result.raw_data());
  visit_dtype(dtype_, [&](auto from_tag) {
    using From = decltype(from_tag);
    visit_dtype(dtype, [&](auto to_tag) {
      using To = decltype(to_tag);
      for_each_offset(shape_, strides_, [&](std::int64_t linear, std::int64_t offset) {
        From value;
        std::memcpy(&value, source + offset * sizeof(From), sizeof(From));
        const To converted = convert_element<To>(value);
        std::memcpy(destination + linear * sizeof(To), &converted, sizeof(To));
      });
    });
  });
  return result;
}

void Tensor::copy_from(const Tensor& source) const {
  LONGSEQ_CHECK(source.shape_ == shape_ && source.dtype_ == dtype_, "[tensor] copy of {} into {}",
                source.describe(), describe());
  if (is_contiguous() && source.is_contiguous()) {
    copy_bytes(raw_data(), device_, source.raw_data(), source.device_, bytes());
    return;
  }
  LONGSEQ_CHECK(device_ == Device::cpu && source.device_ == Device::cpu,
                "[tensor] strided copy between devices: {} into {}", source.describe(), describe());
  const std::size_t element = dtype_size(dtype_);
  const char* from = static_cast<const char*>(source.raw_data());
  char* to = static_cast<char*>(raw_data());
  std::vector<std::int64_t> destination_offsets;
  destination_offsets.reserve(static_cast<std::size_t>(numel()));
  for_each_offset(shape_, strides_, [&](std::int64_t, std::int64_t offset) {
    destination_offsets.push_back(offset);
  });
  for_each_offset(source.shape_, source.strides_, [&](std::int64_t linear, std::int64_t offset) {
    std::memcpy(to + destination_offsets[linear] * element, from + offset * element, element);
  });
}

void Tensor::zero() const {
  LONGSEQ_CHECK(is_contiguous(), "[tensor] zero() of a non-contiguous {}", describe());
  fill_zero(raw_data(), device_, bytes());
}

std::string Tensor::describe() const {
  return fmt::format("{} {} {}", shape_string(shape_), dtype_name(dtype_), device_name(device_));
}

double element_as_double(const Tensor& tensor, std::int64_t linear_index) {
  LONGSEQ_CHECK(tensor.device() == Device::cpu && tensor.is_contiguous(),
                "[tensor] element access needs a contiguous CPU tensor, got {}", tensor.describe());
  double result = 0;
  visit_dtype(tensor.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T value;
    std::memcpy(&value, static_cast<const char*>(tensor.raw_data()) + linear_index * sizeof(T),
                sizeof(T));
    result = convert_element<double>(value);
  });
  return result;
}

std::vector<double> to_double_vector(const Tensor& tensor) {
  const Tensor host = tensor.to(Device::cpu).to(DType::f64).contiguous();
  const double* values = host.data<double>();
  return {values, values + host.numel()};
}

}  // namespace longseq
