#include "models/parameter_set.h"

#include <algorithm>

#include "kernels/random.h"

namespace longseq {

Tensor ParameterSet::add(const std::string& name, const Shape& shape) {
  const Tensor value = Tensor::empty(shape, DType::f32);
  specs_.push_back({name, shape, -1, DType::f32});
  values_.push_back(value);
  gradients_.push_back(Tensor::zeros(shape, DType::f32));
  reduced_.push_back(true);
  return value;
}

Tensor ParameterSet::constant(const std::string& name, const Shape& shape, float value) {
  const Tensor tensor = add(name, shape);
  std::fill_n(tensor.data<float>(), tensor.numel(), value);
  return tensor;
}

Tensor ParameterSet::normal(const std::string& name, const Shape& shape, float stddev) {
  const std::uint64_t stream = values_.size();
  const Tensor tensor = add(name, shape);
  ComputeContext context(1);
  fill_normal(context, tensor, {seed_, stream}, 0.0f, stddev);
  return tensor;
}

void ParameterSet::adopt(const std::string& name, const Tensor& value, const Tensor& gradient) {
  specs_.push_back({name, value.shape(), -1, DType::f32});
  values_.push_back(value);
  gradients_.push_back(gradient);
  reduced_.push_back(false);
}

void ParameterSet::all_reduce_gradients(Communicator& communicator) const {
  if (communicator.size() == 1) {
    return;
  }
  std::int64_t total = 0;
  for (std::size_t i = 0; i < gradients_.size(); ++i) {
    total += reduced_[i] ? gradients_[i].numel() : 0;
  }
  const Tensor flat = Tensor::empty({total}, DType::f32);
  std::int64_t offset = 0;
  for (std::size_t i = 0; i < gradients_.size(); ++i) {
    if (reduced_[i]) {
      std::copy_n(gradients_[i].data<float>(), gradients_[i].numel(), flat.data<float>() + offset);
      offset += gradients_[i].numel();
    }
  }
  communicator.all_reduce(flat, ReduceOp::sum);
  offset = 0;
  for (std::size_t i = 0; i < gradients_.size(); ++i) {
    if (reduced_[i]) {
      std::copy_n(flat.data<float>() + offset, gradients_[i].numel(), gradients_[i].data<float>());
      offset += gradients_[i].numel();
    }
  }
}

}  // namespace longseq
