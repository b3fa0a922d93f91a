// Head-parallel attention (Ulysses; parallel/distributed_attention.h, strategy all_to_all).
//
// One all_to_all_v turns the sequence shards (B, H, S, D) of q, k and v into head shards
// (B, H/P, N, D) in global order (rank t gets heads [t H/P, (t + 1) H/P), rows placed by the
// layout's position mapping, padding dropped); the kernel runs on the whole sequence of those
// heads; a second all_to_all_v brings out and lse back to the sequence shards. Backward moves q,
// k, v, out, lse and dO the same way and dQ, dK, dV back. H and the key/value heads must divide
// by P (checked by the dispatcher).
#pragma once

#include "parallel/distributed_attention.h"

namespace longseq {

void head_parallel_attention_forward(ComputeContext& context, Communicator& communicator,
                                     const SequenceLayout& layout,
                                     const DistributedAttentionConfig& config, const Tensor& q,
                                     const Tensor& k, const Tensor& v, const Tensor& out,
                                     const Tensor& lse, DistributedAttentionStats& stats);

void head_parallel_attention_backward(ComputeContext& context, Communicator& communicator,
                                      const SequenceLayout& layout,
                                      const DistributedAttentionConfig& config, const Tensor& q,
                                      const Tensor& k, const Tensor& v, const Tensor& out,
                                      const Tensor& lse, const Tensor& grad_out,
                                      const Tensor& grad_q, const Tensor& grad_k,
                                      const Tensor& grad_v, DistributedAttentionStats& stats);

}  // namespace longseq
