// Chunked local causal softmax attention over a sequence sharded across the ranks of a
// communicator (the attention blocks of the GSS hybrid, MECHANISMS.md section 11).
//
// The sequence is cut into chunks of `chunk` global positions, aligned at multiples of `chunk`;
// query i attends key j iff both lie in the same chunk and j <= i. A chunk may straddle ranks: a
// rank needs the keys and values of the earlier part of the chunk that its run of consecutive
// positions starts in (at most chunk - 1 positions, its halo), which the ranks holding them send
// with isend/irecv. Each piece of a run that lies in one chunk is one flash attention call with
// explicit query and key offsets. Backward sends the halo's dK and dV home, where they are added.
// The striped layout has no runs of consecutive positions and goes through the contiguous one.
//
// Shards: q (B, Hq, S, D), k and v (B, Hkv, S, D), out (B, Hq, S, D), lse (B, Hq, S) fp32 CPU,
// contiguous, S = layout.shard_length(). Padding positions (>= N) are never attended to; their
// outputs and gradients are 0 and their LSE -inf. Results equal single-rank chunked attention up
// to floating-point reassociation, for every layout and rank count; with chunk >= N they equal
// full causal attention.
#pragma once

#include <cstdint>

#include "parallel/communicator.h"
#include "parallel/distributed_attention.h"
#include "parallel/sequence_layout.h"
#include "runtime/context.h"
#include "runtime/tensor.h"

namespace longseq {

struct LocalAttentionConfig {
  std::int64_t chunk = 512;  // positions per chunk (>= 1)
  float scale = 0.0f;        // 0: 1/sqrt(D)
};

void distributed_local_attention_forward(ComputeContext& context, Communicator& communicator,
                                         const SequenceLayout& layout,
                                         const LocalAttentionConfig& config, const Tensor& q,
                                         const Tensor& k, const Tensor& v, const Tensor& out,
                                         const Tensor& lse,
                                         DistributedAttentionStats* stats = nullptr);

// out and lse: this rank's shards of the forward results; the gradients are overwritten.
void distributed_local_attention_backward(
    ComputeContext& context, Communicator& communicator, const SequenceLayout& layout,
    const LocalAttentionConfig& config, const Tensor& q, const Tensor& k, const Tensor& v,
    const Tensor& out, const Tensor& lse, const Tensor& grad_out, const Tensor& grad_q,
    const Tensor& grad_k, const Tensor& grad_v, DistributedAttentionStats* stats = nullptr);

// FLOPs by the flash convention (4 Nq Nk D per (batch, head), halved for causal) summed over the
// chunks of a sequence of `length` positions: 2 L_c^2 D per chunk of L_c positions and (batch,
// head). Backward is 2.5x forward.
double local_attention_forward_flops(std::int64_t batch, std::int64_t heads, std::int64_t length,
                                     std::int64_t head_dim, std::int64_t chunk);

}  // namespace longseq
