// Momentum attention (kernels/momentum_attention.h) over a sequence sharded across the ranks of a
// communicator, by recurrent state handoff (MECHANISMS.md section 4).
//
// Each rank passes its shard (B, H, S, Dk) of q and k and (B, H, S, Dv) of v in `layout` and
// receives its shard of out; results equal single-rank momentum attention over the whole sequence
// up to floating-point reassociation, for every layout and rank count. Padding positions (>= N)
// contribute nothing to any state and get zero output and gradients. Causal only.
//
// As for linear attention (parallel/linear_attention_parallel.h) the sequence is cut into chunks
// (one per rank, or 2P for zigzag); each chunk summarises itself into (C, D, z), the summaries
// are scanned across ranks, and each chunk computes its outputs from the state of everything
// before it. The state is an affine map of the incoming state rather than a sum: over a chunk of
// L positions C and z add, D_out = mu^L D_in + D_local. So each scan element carries its decay
// mu^L beside (C, D, z), and two elements compose as (C, D, z, m) then (C', D', z', m') =
// (C + C', m' D + D', z + z', m m'). The backward scans the gradients of the states in reverse
// with the same composition: the gradient of D entering a chunk is mu^L times the gradient
// leaving it plus what the chunk's own queries add (the transposed decay is the same scalar).
// Strategies chain and allgather (parallel/state_scan.h); the striped layout goes through the
// contiguous one (parallel/sequence_chunks.h).
#pragma once

#include "parallel/communicator.h"
#include "parallel/distributed_attention.h"
#include "parallel/sequence_layout.h"
#include "parallel/state_scan.h"
#include "runtime/context.h"

namespace longseq {

struct MomentumAttentionParallelConfig {
  StateScanStrategy strategy = StateScanStrategy::chain;
  float momentum = 0.5f;  // mu
  float step = 0.8f;      // gamma
  float eps = 1e-6f;
};

void distributed_momentum_attention_forward(ComputeContext& context, Communicator& communicator,
                                            const SequenceLayout& layout,
                                            const MomentumAttentionParallelConfig& config,
                                            const Tensor& q, const Tensor& k, const Tensor& v,
                                            const Tensor& out,
                                            DistributedAttentionStats* stats = nullptr);

// grad_q, grad_k, grad_v are overwritten.
void distributed_momentum_attention_backward(ComputeContext& context, Communicator& communicator,
                                             const SequenceLayout& layout,
                                             const MomentumAttentionParallelConfig& config,
                                             const Tensor& q, const Tensor& k, const Tensor& v,
                                             const Tensor& grad_out, const Tensor& grad_q,
                                             const Tensor& grad_k, const Tensor& grad_v,
                                             DistributedAttentionStats* stats = nullptr);

}  // namespace longseq
