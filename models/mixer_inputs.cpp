#include "models/mixer_inputs.h"

#include "runtime/philox.h"

namespace longseq {

Tensor random_shard(const TensorSpec& spec, const SequenceLayout& layout, int rank,
                    std::uint64_t seed, std::uint64_t stream) {
  Shape shard_shape = spec.shape;
  shard_shape[spec.sequence_dim] = layout.shard_length();
  Tensor shard = Tensor::empty(shard_shape, DType::f32);
  std::int64_t outer = 1;
  for (int d = 0; d < spec.sequence_dim; ++d) outer *= spec.shape[d];
  std::int64_t inner = 1;
  for (int d = spec.sequence_dim + 1; d < static_cast<int>(spec.shape.size()); ++d)
    inner *= spec.shape[d];
  const std::int64_t full_length = spec.shape[spec.sequence_dim];
  float* values = shard.data<float>();
  for (std::int64_t o = 0; o < outer; ++o) {
    for (std::int64_t local = 0; local < layout.shard_length(); ++local) {
      const std::int64_t global = layout.global_position(rank, local);
      float* row = values + (o * layout.shard_length() + local) * inner;
      for (std::int64_t i = 0; i < inner; ++i) {
        const auto counter = static_cast<std::uint64_t>((o * full_length + global) * inner + i);
        row[i] = global < full_length ? 2.0f * random_uniform(seed, stream, counter) - 1.0f : 0.0f;
      }
    }
  }
  return shard;
}

Tensor random_full(const TensorSpec& spec, std::uint64_t seed, std::uint64_t stream) {
  const SequenceLayout single(LayoutKind::contiguous, spec.shape[spec.sequence_dim], 1);
  return random_shard(spec, single, 0, seed, stream);
}

}  // namespace longseq
