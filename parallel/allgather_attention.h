// All-gather attention (parallel/distributed_attention.h, strategy all_gather).
//
// Every rank gathers the K/V shards of all ranks, (P, 2, B, Hkv, S, D), and attends its own
// queries to each of them with the block computation of the ring (BlockAttention: causal masking
// from global positions, fully masked blocks skipped), so no reordering to global order is needed
// and every layout is exact. Backward computes the dK/dV contribution to every rank's block and
// sends each block's contribution to its owner with one all_to_all_v; owners add them in rank
// order. Memory per rank grows with the whole sequence's K/V: the simple baseline of the ring.
#pragma once

#include "parallel/distributed_attention.h"

namespace longseq {

void allgather_attention_forward(ComputeContext& context, Communicator& communicator,
                                 const SequenceLayout& layout,
                                 const DistributedAttentionConfig& config, const Tensor& q,
                                 const Tensor& k, const Tensor& v, const Tensor& out,
                                 const Tensor& lse, DistributedAttentionStats& stats);

void allgather_attention_backward(ComputeContext& context, Communicator& communicator,
                                  const SequenceLayout& layout,
                                  const DistributedAttentionConfig& config, const Tensor& q,
                                  const Tensor& k, const Tensor& v, const Tensor& out,
                                  const Tensor& lse, const Tensor& grad_out, const Tensor& grad_q,
                                  const Tensor& grad_k, const Tensor& grad_v,
                                  DistributedAttentionStats& stats);

}  // namespace longseq
