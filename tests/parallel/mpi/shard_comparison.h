// What the multi-rank tests share to check a distributed mixer against its single-rank reference:
// seeded random inputs (every rank draws the same full tensors) and the error of this rank's shard
// against the same positions of the full reference.
#pragma once

#include <cstdint>

#include "parallel/sequence_layout.h"
#include "runtime/context.h"
#include "runtime/tensor.h"

namespace longseq {

// An fp32 tensor of N(0, stddev^2) values from the random stream (seed, stream).
Tensor normal(ComputeContext& context, const Shape& shape, std::uint64_t seed, std::uint64_t stream,
              float stddev = 1.0f);

// max |actual - expected| / max |expected| (the absolute error where expected is all 0) over this
// rank's valid positions, with actual this rank's shard (B, H, S[, D]) and full the reference
// (B, H, N[, D]); every padding position of actual must hold exactly `padding`.
double shard_relative_error(const Tensor& actual, const Tensor& full, const SequenceLayout& layout,
                            int rank, float padding = 0.0f);

// max |actual - expected| / max |expected| (the absolute error where expected is all 0) over all
// elements of two fp32 tensors of one shape.
double relative_error(const Tensor& actual, const Tensor& expected);

}  // namespace longseq
