// Validation and dispatch of distributed attention: every check names the offending tensor or
// setting, and bad configurations are UserErrors on every rank alike (they depend only on values
// every rank shares), so no rank is left waiting in a collective.
#include "parallel/distributed_attention.h"

#include "parallel/allgather_attention.h"
#include "parallel/head_parallel_attention.h"
#include "parallel/ring_attention.h"
#include "parallel/stats_scope.h"

namespace longseq {

namespace {

constexpr const char* kOp = "distributed_attention";

void require_shape(const char* name, const Tensor& tensor, const Shape& expected) {
  LONGSEQ_REQUIRE(tensor.shape() == expected, "[{}] {} must be {}, got {}", kOp, name,
                  shape_string(expected), tensor.describe());
  LONGSEQ_REQUIRE(tensor.dtype() == DType::f32 && tensor.device() == Device::cpu,
                  "[{}] {} must be an fp32 CPU tensor (the MPI backend moves host buffers and "
                  "partial results merge in fp32), got {}",
                  kOp, name, tensor.describe());
  LONGSEQ_REQUIRE(tensor.is_contiguous(), "[{}] {} must be contiguous", kOp, name);
}

// Checks the inputs and forward results against the layout and the communicator.
void validate(const Communicator& communicator, const SequenceLayout& layout,
              const DistributedAttentionConfig& config, const Tensor& q, const Tensor& k,
              const Tensor& v, const Tensor& out, const Tensor& lse) {
  LONGSEQ_REQUIRE(layout.ranks() == communicator.size(),
                  "[{}] the {} layout is for {} ranks but the communicator has {}", kOp,
                  layout_name(layout.kind()), layout.ranks(), communicator.size());
  LONGSEQ_REQUIRE(communicator.device() == Device::cpu,
                  "[{}] the {} backend is not supported yet (host buffers only)", kOp,
                  communicator.backend());
  LONGSEQ_REQUIRE(q.rank() == 4 && k.rank() == 4,
                  "[{}] q and k must be (B, H, S, D), got {} and {}", kOp, q.describe(),
                  k.describe());
  const std::int64_t batch = q.size(0);
  const std::int64_t heads = q.size(1);
  const std::int64_t kv_heads = k.size(1);
  const std::int64_t shard = layout.shard_length();
  const std::int64_t head_dim = q.size(3);
  LONGSEQ_REQUIRE(q.size(2) == shard,
                  "[{}] q holds {} positions per rank; the {} layout of {} positions over {} "
                  "ranks needs {} (padding included)",
                  kOp, q.size(2), layout_name(layout.kind()), layout.global_length(),
                  layout.ranks(), shard);
  require_shape("q", q, {batch, heads, shard, head_dim});
  require_shape("k", k, {batch, kv_heads, shard, head_dim});
  require_shape("v", v, {batch, kv_heads, shard, head_dim});
  require_shape("out", out, q.shape());
  require_shape("lse", lse, {batch, heads, shard});
  LONGSEQ_REQUIRE(kv_heads > 0 && heads % kv_heads == 0,
                  "[{}] query heads ({}) must be a multiple of key/value heads ({})", kOp, heads,
                  kv_heads);
  if (config.strategy == AttentionStrategy::all_to_all) {
    const int ranks = communicator.size();
    LONGSEQ_REQUIRE(heads % ranks == 0 && kv_heads % ranks == 0,
                    "[{}] strategy alltoall splits heads over ranks: query heads ({}) and "
                    "key/value heads ({}) must both be divisible by the {} ranks; use strategy "
                    "ring or allgather",
                    kOp, heads, kv_heads, ranks);
  }
}

}  // namespace

std::string_view strategy_name(AttentionStrategy strategy) {
  switch (strategy) {
    case AttentionStrategy::ring:
      return "ring";
    case AttentionStrategy::all_to_all:
      return "alltoall";
    case AttentionStrategy::all_gather:
      return "allgather";
  }
  return "unknown";
}

AttentionStrategy parse_strategy(std::string_view name) {
  for (const AttentionStrategy strategy :
       {AttentionStrategy::ring, AttentionStrategy::all_to_all, AttentionStrategy::all_gather}) {
    if (name == strategy_name(strategy)) {
      return strategy;
    }
  }
  throw UserError(LONGSEQ_FORMAT(
      "[distributed_attention] unknown strategy '{}' (expected ring, alltoall or allgather)",
      name));
}

void distributed_attention_forward(ComputeContext& context, Communicator& communicator,
                                   const SequenceLayout& layout,
                                   const DistributedAttentionConfig& config, const Tensor& q,
                                   const Tensor& k, const Tensor& v, const Tensor& out,
                                   const Tensor& lse, DistributedAttentionStats* stats) {
  validate(communicator, layout, config, q, k, v, out, lse);
  StatsScope scope(communicator, stats);
  switch (config.strategy) {
    case AttentionStrategy::ring:
      ring_attention_forward(context, communicator, layout, config, q, k, v, out, lse,
                             scope.stats());
      return;
    case AttentionStrategy::all_to_all:
      head_parallel_attention_forward(context, communicator, layout, config, q, k, v, out, lse,
                                      scope.stats());
      return;
    case AttentionStrategy::all_gather:
      allgather_attention_forward(context, communicator, layout, config, q, k, v, out, lse,
                                  scope.stats());
      return;
  }
}

void distributed_attention_backward(ComputeContext& context, Communicator& communicator,
                                    const SequenceLayout& layout,
                                    const DistributedAttentionConfig& config, const Tensor& q,
                                    const Tensor& k, const Tensor& v, const Tensor& out,
                                    const Tensor& lse, const Tensor& grad_out, const Tensor& grad_q,
                                    const Tensor& grad_k, const Tensor& grad_v,
                                    DistributedAttentionStats* stats) {
  validate(communicator, layout, config, q, k, v, out, lse);
  require_shape("grad_out", grad_out, q.shape());
  require_shape("grad_q", grad_q, q.shape());
  require_shape("grad_k", grad_k, k.shape());
  require_shape("grad_v", grad_v, k.shape());
  StatsScope scope(communicator, stats);
  switch (config.strategy) {
    case AttentionStrategy::ring:
      ring_attention_backward(context, communicator, layout, config, q, k, v, out, lse, grad_out,
                              grad_q, grad_k, grad_v, scope.stats());
      return;
    case AttentionStrategy::all_to_all:
      head_parallel_attention_backward(context, communicator, layout, config, q, k, v, out, lse,
                                       grad_out, grad_q, grad_k, grad_v, scope.stats());
      return;
    case AttentionStrategy::all_gather:
      allgather_attention_backward(context, communicator, layout, config, q, k, v, out, lse,
                                   grad_out, grad_q, grad_k, grad_v, scope.stats());
      return;
  }
}

}  // namespace longseq
