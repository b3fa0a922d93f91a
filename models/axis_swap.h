// Exchanges the two middle axes of a contiguous fp32 CPU tensor: to (A, N, M, K) = from (A, M, N,
// K). A 3-D tensor (A, M, N) is taken as K = 1. The blocks use it to move between the
// sequence-major rows their matrix products and norms work on, (B, S, E) = (B, S, H, D), and the
// channel-major shards the sequence layers take: (B, H, S) for the state-space layer, (B, H, S, D)
// for attention.
#pragma once

#include "runtime/tensor.h"

namespace longseq {

void swap_middle_axes(const Tensor& from, const Tensor& to);

}  // namespace longseq
