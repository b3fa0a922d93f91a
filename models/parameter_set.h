// The learned parameters of a block: named fp32 CPU tensors, replicated on every rank, and their
// gradients. Initial values come from the counter-based streams of runtime/philox.h, so every
// rank draws the same ones; summing the gradients over the sequence group packs them into one
// buffer for a single all-reduce.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/mixer.h"
#include "parallel/communicator.h"
#include "runtime/tensor.h"

namespace longseq {

class ParameterSet {
 public:
  // Parameters drawn at random use the streams (seed, index in the set).
  explicit ParameterSet(std::uint64_t seed) : seed_(seed) {}

  // A new parameter (and its zero gradient) filled with `value`, or N(0, stddev^2) for normal().
  Tensor constant(const std::string& name, const Shape& shape, float value);
  Tensor normal(const std::string& name, const Shape& shape, float stddev);
  // Lists a parameter initialised and differentiated elsewhere (a layer that reduces its own
  // gradients): all_reduce_gradients() leaves its gradient alone.
  void adopt(const std::string& name, const Tensor& value, const Tensor& gradient);

  [[nodiscard]] const Tensor& gradient(std::size_t index) const { return gradients_.at(index); }
  // Sums the gradients of constant() and normal() parameters over the ranks of `communicator`.
  void all_reduce_gradients(Communicator& communicator) const;

  [[nodiscard]] const std::vector<TensorSpec>& specs() const { return specs_; }
  [[nodiscard]] const std::vector<Tensor>& values() const { return values_; }
  [[nodiscard]] const std::vector<Tensor>& gradients() const { return gradients_; }

 private:
  Tensor add(const std::string& name, const Shape& shape);

  std::uint64_t seed_;
  std::vector<TensorSpec> specs_;
  std::vector<Tensor> values_;
  std::vector<Tensor> gradients_;
  std::vector<bool> reduced_;  // per parameter: summed by all_reduce_gradients()
};

}  // namespace longseq
