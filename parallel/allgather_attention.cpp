#include "parallel/allgather_attention.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "parallel/block_attention.h"
#include "runtime/timer.h"

namespace longseq {

namespace {

Shape with_leading(std::initializer_list<std::int64_t> leading, const Shape& shape) {
  Shape result(leading);
  result.insert(result.end(), shape.begin(), shape.end());
  return result;
}

// K (which = 0) or V (which = 1) of `rank` in a (P, 2, B, Hkv, S, D) tensor, as (B, Hkv, S, D).
Tensor rank_part(const Tensor& per_rank, int rank, int which) {
  Shape part(per_rank.shape().begin() + 2, per_rank.shape().end());
  return per_rank.slice(0, rank, rank + 1).slice(1, which, which + 1).reshape(std::move(part));
}

// The K/V of every rank, (P, 2, B, Hkv, S, D); the gather's time is booked as exposed.
Tensor gather_keys_values(Communicator& communicator, const Tensor& k, const Tensor& v,
                          DistributedAttentionStats& stats) {
  const Tensor local = Tensor::empty(with_leading({1, 2}, k.shape()), DType::f32);
  rank_part(local, 0, 0).copy_from(k);
  rank_part(local, 0, 1).copy_from(v);
  const Tensor gathered =
      Tensor::empty(with_leading({communicator.size(), 2}, k.shape()), DType::f32);
  const WallTimer timer;
  communicator.all_gather(local.reshape(with_leading({2}, k.shape())), gathered);
  stats.communication_seconds += timer.seconds();
  stats.exposed_communication_seconds += timer.seconds();
  return gathered;
}

void add_block_stats(const BlockAttention& block, DistributedAttentionStats& stats) {
  stats.compute_seconds += block.compute_seconds();
  stats.blocks_computed += block.pieces_computed();
  stats.blocks_skipped += block.pieces_skipped();
}

}  // namespace

void allgather_attention_forward(ComputeContext& context, Communicator& communicator,
                                 const SequenceLayout& layout,
                                 const DistributedAttentionConfig& config, const Tensor& q,
                                 const Tensor& k, const Tensor& v, const Tensor& out,
                                 const Tensor& lse, DistributedAttentionStats& stats) {
  const Tensor gathered = gather_keys_values(communicator, k, v, stats);
  BlockAttention block(context, layout, communicator.rank(), config, q.size(3), q.size(2), {});
  const std::int64_t group = q.size(1) / k.size(1);
  out.zero();
  std::fill_n(lse.data<float>(), lse.numel(), -std::numeric_limits<float>::infinity());
  for (std::int64_t b = 0; b < q.size(0); ++b) {
    for (std::int64_t head = 0; head < q.size(1); ++head) {
      for (int owner = 0; owner < communicator.size(); ++owner) {
        block.forward(head_slice(q, b, head),
                      head_slice(rank_part(gathered, owner, 0), b, head / group),
                      head_slice(rank_part(gathered, owner, 1), b, head / group), owner,
                      head_slice(out, b, head), head_slice(lse, b, head));
      }
    }
  }
  add_block_stats(block, stats);
}

void allgather_attention_backward(ComputeContext& context, Communicator& communicator,
                                  const SequenceLayout& layout,
                                  const DistributedAttentionConfig& config, const Tensor& q,
                                  const Tensor& k, const Tensor& v, const Tensor& out,
                                  const Tensor& lse, const Tensor& grad_out, const Tensor& grad_q,
                                  const Tensor& grad_k, const Tensor& grad_v,
                                  DistributedAttentionStats& stats) {
  const Tensor gathered = gather_keys_values(communicator, k, v, stats);
  // This rank's contributions to every rank's dK/dV, and those of every rank to its own block.
  const Tensor contributions = Tensor::zeros(gathered.shape(), DType::f32);
  const Tensor received = Tensor::empty(gathered.shape(), DType::f32);
  BlockAttention block(context, layout, communicator.rank(), config, q.size(3), q.size(2), {});
  const std::int64_t group = q.size(1) / k.size(1);
  grad_q.zero();
  for (std::int64_t b = 0; b < q.size(0); ++b) {
    for (std::int64_t head = 0; head < q.size(1); ++head) {
      for (int owner = 0; owner < communicator.size(); ++owner) {
        const std::int64_t kv_head = head / group;
        block.backward(
            head_slice(q, b, head), head_slice(rank_part(gathered, owner, 0), b, kv_head),
            head_slice(rank_part(gathered, owner, 1), b, kv_head), owner, head_slice(out, b, head),
            head_slice(lse, b, head), head_slice(grad_out, b, head), head_slice(grad_q, b, head),
            head_slice(rank_part(contributions, owner, 0), b, kv_head),
            head_slice(rank_part(contributions, owner, 1), b, kv_head));
      }
    }
  }
  add_block_stats(block, stats);
  const std::vector<std::int64_t> counts(static_cast<std::size_t>(communicator.size()),
                                         2 * k.numel());
  const WallTimer timer;
  communicator.all_to_all_v(contributions.reshape({contributions.numel()}), counts,
                            received.reshape({received.numel()}), counts);
  stats.communication_seconds += timer.seconds();
  stats.exposed_communication_seconds += timer.seconds();
  grad_k.zero();
  grad_v.zero();
  for (int source = 0; source < communicator.size(); ++source) {
    accumulate(grad_k, rank_part(received, source, 0));
    accumulate(grad_v, rank_part(received, source, 1));
  }
}

}  // namespace longseq
