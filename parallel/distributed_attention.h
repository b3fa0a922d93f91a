// Exact softmax attention over a sequence sharded across the ranks of a communicator.
//
// Each rank passes its shard (B, H, S, D) of q, k, v in the layout `layout` and receives its shard
// of the output (B, H, S, D) and the LSE (B, H, S) fp32; results equal single-rank attention over
// the whole sequence (up to floating-point reassociation), for every layout and rank count.
// Causal masking uses global positions. Padding positions (>= N) are neither attended to nor
// produce anything but zero output (and -inf LSE).
//
// Strategies:
//   ring       K/V blocks travel around the ring (in backward also dK/dV accumulators), with the
//              exchange of the next block overlapped with the computation of the current one;
//              partial results merge by their LSEs in fp32; fully masked blocks are skipped.
//   all_to_all head-parallel (Ulysses): all-to-all to (B, H/P, N, D), local attention, back;
//              requires H (and the key/value heads) divisible by P (UserError otherwise).
//   all_gather every rank gathers the whole K/V and attends its own queries.
#pragma once

#include <cstdint>
#include <string_view>

#include "kernels/attention.h"
#include "parallel/communicator.h"
#include "parallel/sequence_layout.h"
#include "runtime/context.h"

namespace longseq {

enum class AttentionStrategy : std::uint8_t { ring, all_to_all, all_gather };

std::string_view strategy_name(AttentionStrategy strategy);
// "ring", "alltoall" or "allgather"; throws UserError otherwise.
AttentionStrategy parse_strategy(std::string_view name);

// Which kernel computes each local block.
enum class AttentionKernel : std::uint8_t { flash, softmax };

struct DistributedAttentionConfig {
  AttentionStrategy strategy = AttentionStrategy::ring;
  AttentionKernel kernel = AttentionKernel::flash;
  bool causal = false;
  float scale = 0.0f;  // 0: 1/sqrt(D)
};

// What one call did, for benchmarks: seconds are wall time on this rank.
struct DistributedAttentionStats {
  std::int64_t bytes_sent = 0;
  double compute_seconds = 0;
  // Time spent waiting for communication that was not hidden behind computation.
  double exposed_communication_seconds = 0;
  // Total time communication was in flight (hidden + exposed).
  double communication_seconds = 0;
  // Kernel calls made, and (query, key) block pairs skipped because no query saw any key.
  std::int64_t blocks_computed = 0;
  std::int64_t blocks_skipped = 0;
};

void distributed_attention_forward(ComputeContext& context, Communicator& communicator,
                                   const SequenceLayout& layout,
                                   const DistributedAttentionConfig& config, const Tensor& q,
                                   const Tensor& k, const Tensor& v, const Tensor& out,
                                   const Tensor& lse, DistributedAttentionStats* stats = nullptr);

// out and lse are this rank's shards of the forward results; gradients are overwritten.
void distributed_attention_backward(ComputeContext& context, Communicator& communicator,
                                    const SequenceLayout& layout,
                                    const DistributedAttentionConfig& config, const Tensor& q,
                                    const Tensor& k, const Tensor& v, const Tensor& out,
                                    const Tensor& lse, const Tensor& grad_out, const Tensor& grad_q,
                                    const Tensor& grad_k, const Tensor& grad_v,
                                    DistributedAttentionStats* stats = nullptr);

}  // namespace longseq
