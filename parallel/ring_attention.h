// Ring attention (parallel/distributed_attention.h, strategy ring), forward and backward.
//
// The ring runs once per (batch, key/value head): in step t = 0 .. P-1 rank r holds the K/V rows
// of that head from rank (r - t) mod P, attends every query head of the group to them
// (BlockAttention) and passes them on to rank r + 1. The exchange of the next block is posted
// before the current block is computed, and progress is driven from the compute loop: every
// kernel piece ends with a test() of the pending requests (Open MPI makes no progress on its own
// on these machines). Per rank this keeps two K/V blocks of one head in flight, never anything of
// full-sequence size.
//
// Backward: the same ring also carries dK/dV. Rank r computes the contribution of its queries to
// the visiting block, adds the accumulator that arrives from rank r - 1 (the sum of the earlier
// ranks' contributions) and sends the sum to rank r + 1; after P steps the accumulator of every
// block arrives at its owner. dQ stays local. Every block uses the globally merged out and lse.
#pragma once

#include "parallel/distributed_attention.h"

namespace longseq {

void ring_attention_forward(ComputeContext& context, Communicator& communicator,
                            const SequenceLayout& layout, const DistributedAttentionConfig& config,
                            const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                            const Tensor& lse, DistributedAttentionStats& stats);

void ring_attention_backward(ComputeContext& context, Communicator& communicator,
                             const SequenceLayout& layout, const DistributedAttentionConfig& config,
                             const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                             const Tensor& lse, const Tensor& grad_out, const Tensor& grad_q,
                             const Tensor& grad_k, const Tensor& grad_v,
                             DistributedAttentionStats& stats);

}  // namespace longseq
