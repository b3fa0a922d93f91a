// Reproducible random inputs for a mixer, drawn per global position so that every rank count and
// layout sees the same global tensors without any rank building them whole.
//
// Element e (row-major over the full spec shape) is uniform in (-1, 1], drawn at counter e of the
// Philox stream (seed, stream); padding positions of a shard are zero. Used by `longseq bench`
// and by the conformance tests.
#pragma once

#include <cstdint>

#include "models/mixer.h"
#include "parallel/sequence_layout.h"
#include "runtime/tensor.h"

namespace longseq {

// This rank's shard of the full random tensor of `spec`: fp32 on the CPU, with
// layout.shard_length() positions at spec.sequence_dim.
Tensor random_shard(const TensorSpec& spec, const SequenceLayout& layout, int rank,
                    std::uint64_t seed, std::uint64_t stream);
// The whole tensor of `spec` (the shard of one rank holding the sequence contiguously).
Tensor random_full(const TensorSpec& spec, std::uint64_t seed, std::uint64_t stream);

}  // namespace longseq
