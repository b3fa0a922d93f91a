// Linear attention (kernels/linear_attention.h) over a sequence sharded across the ranks of a
// communicator, by recurrent state handoff (MECHANISMS.md section 3).
//
// Each rank passes its shard (B, H, S, Dk) of q and k and (B, H, S, Dv) of v in `layout` and
// receives its shard of out; results equal single-rank linear attention over the whole sequence up
// to floating-point reassociation, for every layout and rank count. Padding positions (>= N)
// contribute nothing to any state and get zero output and gradients.
//
// The sequence is cut into chunks: one per rank (contiguous) or 2P (zigzag: chunk order 0 .. 2P-1
// with rank r holding chunks r and 2P-1-r). Forward: every rank summarises each of its chunks into
// its state (S, z) (no outputs computed), the states are scanned across ranks
// (parallel/state_scan.h, strategy chain or allgather), and each chunk computes its outputs from
// its incoming state: the sum over the chunks before it (causal) or over every other chunk
// (non-causal: the forward plus the reverse scan, so the total of all shard sums is formed without
// ever subtracting a state). Backward: the incoming states are rebuilt the same way; each chunk
// summarises the gradient its queries send to its incoming state (R, r); a reverse scan (suffix
// sums; non-causal: both directions) gives each chunk the gradient of its final state; then each
// chunk runs the full backward from both. The striped layout has no runs of consecutive positions
// to hand a state along, so it is redistributed to the contiguous layout with all_to_all_v (as
// head-parallel attention does for global order), computed there, and redistributed back.
//
// With key log scales (the Performer's stabilised features, kernels/linear_attention.h) a state is
// exp(m) (S, z); the scans compose states with a monoid that rescales both to the larger log
// scale before adding (identity: m = -inf, S = z = 0), in both directions: a gradient state
// (R, r) is exp(rho) (R, r) and sums the same way. The non-causal form forms every chunk's
// incoming state by the same composition of the forward and reverse scans, so the log scales of
// all shards' keys enter through the same running max as on one rank, and the result is exact.
#pragma once

#include "kernels/linear_attention.h"
#include "parallel/communicator.h"
#include "parallel/distributed_attention.h"
#include "parallel/sequence_layout.h"
#include "parallel/state_scan.h"
#include "runtime/context.h"

namespace longseq {

struct LinearAttentionParallelConfig {
  StateScanStrategy strategy = StateScanStrategy::chain;
  bool causal = false;
  float eps = 1e-6f;  // 0 with key log scales
  LinearAttentionFeatureMap feature_map = LinearAttentionFeatureMap::elu_plus_one;
};

void distributed_linear_attention_forward(ComputeContext& context, Communicator& communicator,
                                          const SequenceLayout& layout,
                                          const LinearAttentionParallelConfig& config,
                                          const Tensor& q, const Tensor& k, const Tensor& v,
                                          const Tensor& key_log_scale, const Tensor& out,
                                          DistributedAttentionStats* stats = nullptr);

// key_log_scale: this rank's shard (B, H, S) of the keys' log scales, or undefined (none).
// grad_q, grad_k, grad_v are overwritten (grad_k with the log scales held fixed).
void distributed_linear_attention_backward(
    ComputeContext& context, Communicator& communicator, const SequenceLayout& layout,
    const LinearAttentionParallelConfig& config, const Tensor& q, const Tensor& k, const Tensor& v,
    const Tensor& key_log_scale, const Tensor& grad_out, const Tensor& grad_q, const Tensor& grad_k,
    const Tensor& grad_v, DistributedAttentionStats* stats = nullptr);

}  // namespace longseq
