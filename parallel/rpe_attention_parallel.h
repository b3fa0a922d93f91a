// rpe attention (kernels/rpe_attention.h, MECHANISMS.md section 6) over a sequence sharded across
// the ranks of a communicator, as a ring of key blocks.
//
// With arbitrary position weights there is no finite state to hand from shard to shard: every
// query needs every key block's phi(K) (x) V columns under the weights of its offsets. So the raw
// k and v shards travel around the ring (cheaper to send than the Dk (Dv + 1) feature columns,
// which are rebuilt on arrival), and each (query chunk, key chunk) pair is one block-Toeplitz
// product with the slice of the weights that covers the pair's global offsets
// (rpe_block_first_entry). The pair's numerator' = [num | den] adds up on the query's rank; the
// readout divides once all P key shards have passed. Causal: pairs whose keys all lie after their
// queries are skipped, pairs of distinct chunks are otherwise fully past (one product), and only a
// chunk's pair with itself takes the exact causal split (kernels/rpe_attention.h), so the result
// is exactly causal too.
//
// Backward: the ring runs twice: first to rebuild the numerators (the readout gradient needs the
// global den), then with gradient accumulators for k and v travelling with the k and v they
// belong to, arriving home after one extra hop (as ring attention does for dK/dV); grad_q stays
// local; each rank adds its pairs' share of grad_b and an all-reduce sums it, so every rank holds
// the full gradient of the replicated parameter b.
//
// Each rank passes its shard (B, H, S, Dk) of q and k and (B, H, S, Dv) of v in `layout` (chunks
// of consecutive positions: contiguous and zigzag directly, striped through the contiguous layout,
// parallel/sequence_chunks.h) and the full b (H, 2N - 1), N = layout.global_length(). Padding
// positions (>= N) contribute nothing and get zero output and gradients. Results equal the
// one-rank rpe_attention_forward / backward up to floating-point reassociation.
#pragma once

#include "parallel/communicator.h"
#include "parallel/distributed_attention.h"
#include "parallel/sequence_layout.h"
#include "runtime/context.h"

namespace longseq {

struct RpeAttentionParallelConfig {
  bool causal = false;
  float eps = 1e-6f;
};

void distributed_rpe_attention_forward(ComputeContext& context, Communicator& communicator,
                                       const SequenceLayout& layout,
                                       const RpeAttentionParallelConfig& config, const Tensor& q,
                                       const Tensor& k, const Tensor& v, const Tensor& b,
                                       const Tensor& out,
                                       DistributedAttentionStats* stats = nullptr);

// grad_q, grad_k, grad_v, grad_b (H, 2N - 1, the same on every rank) are overwritten; grad_b may
// be undefined (not wanted).
void distributed_rpe_attention_backward(
    ComputeContext& context, Communicator& communicator, const SequenceLayout& layout,
    const RpeAttentionParallelConfig& config, const Tensor& q, const Tensor& k, const Tensor& v,
    const Tensor& b, const Tensor& grad_out, const Tensor& grad_q, const Tensor& grad_k,
    const Tensor& grad_v, const Tensor& grad_b, DistributedAttentionStats* stats = nullptr);

}  // namespace longseq
