#include "parallel/head_parallel_attention.h"

#include <limits>
#include <vector>

#include "parallel/sequence_rows.h"
#include "runtime/timer.h"

namespace longseq {

namespace {

// A (B, H, S, E) view of a contiguous (B, H, S, D) tensor, or of a (B, H, S) one with E = 1.
Tensor four_dimensional(const Tensor& tensor) {
  if (tensor.rank() == 4) {
    return tensor;
  }
  return tensor.reshape({tensor.size(0), tensor.size(1), tensor.size(2), 1});
}

// Elements one rank exchanges of a (B, H, length, E) tensor split into P head groups.
std::int64_t head_group_elements(const Tensor& tensor, int ranks, std::int64_t length) {
  return tensor.size(0) * (tensor.size(1) / ranks) * length * tensor.size(3);
}

// The exchange of several tensors with one all_to_all_v: for each peer, the head group of every
// tensor, back to back in tensor order. Returns the counts (the same in both directions).
std::vector<std::int64_t> exchange_counts(const std::vector<Tensor>& tensors, int ranks,
                                          std::int64_t length) {
  std::int64_t per_peer = 0;
  for (const Tensor& tensor : tensors) {
    per_peer += head_group_elements(tensor, ranks, length);
  }
  return std::vector<std::int64_t>(static_cast<std::size_t>(ranks), per_peer);
}

// Calls visit(peer, index, segment) for every peer and tensor, where segment is the
// (B, H/P, length, E) part of `buffer` that holds tensor `index` for (or from) `peer`.
template <typename Visit>
void for_each_segment(const Tensor& buffer, const std::vector<Tensor>& tensors, int ranks,
                      std::int64_t length, Visit&& visit) {
  std::int64_t offset = 0;
  for (int peer = 0; peer < ranks; ++peer) {
    for (std::size_t index = 0; index < tensors.size(); ++index) {
      const Tensor& tensor = tensors[index];
      const std::int64_t elements = head_group_elements(tensor, ranks, length);
      visit(peer, index,
            buffer.slice(0, offset, offset + elements)
                .reshape({tensor.size(0), tensor.size(1) / ranks, length, tensor.size(3)}));
      offset += elements;
    }
  }
}

// Sequence shards (B, Hx, S, E) -> head shards (B, Hx / P, N, E) in global order.
std::vector<Tensor> sequence_to_heads(Communicator& communicator, const SequenceLayout& layout,
                                      const std::vector<Tensor>& shards) {
  const int ranks = layout.ranks();
  const std::int64_t shard_length = layout.shard_length();
  const std::vector<std::int64_t> counts = exchange_counts(shards, ranks, shard_length);
  const Tensor send = Tensor::empty({counts[0] * ranks}, DType::f32);
  const Tensor receive = Tensor::empty({counts[0] * ranks}, DType::f32);
  for_each_segment(send, shards, ranks, shard_length,
                   [&](int peer, std::size_t index, const Tensor& segment) {
                     const std::int64_t group = segment.size(1);
                     copy_rows(SequenceRows::of(shards[index], 1), peer * group, 1,
                               SequenceRows::of(segment, 1), 0, 1, group);
                   });
  communicator.all_to_all_v(send, counts, receive, counts);
  std::vector<Tensor> heads;
  for (const Tensor& shard : shards) {
    heads.push_back(Tensor::empty(
        {shard.size(0), shard.size(1) / ranks, layout.global_length(), shard.size(3)}, DType::f32));
  }
  for_each_segment(receive, shards, ranks, shard_length,
                   [&](int peer, std::size_t index, const Tensor& segment) {
                     const SequenceRows to = SequenceRows::of(heads[index], 2);
                     for (const LayoutRun& run : layout.runs(peer)) {
                       copy_rows(SequenceRows::of(segment, 2), run.local_begin, 1, to,
                                 run.global_begin, run.stride, run.valid_length);
                     }
                   });
  return heads;
}

// Head shards (B, Hx / P, N, E) -> the sequence shards (B, Hx, S, E), written in place; padding
// rows of tensor i get padding[i].
void heads_to_sequence(Communicator& communicator, const SequenceLayout& layout,
                       const std::vector<Tensor>& heads, const std::vector<Tensor>& shards,
                       const std::vector<float>& padding) {
  const int ranks = layout.ranks();
  const std::int64_t shard_length = layout.shard_length();
  const std::vector<std::int64_t> counts = exchange_counts(shards, ranks, shard_length);
  const Tensor send = Tensor::empty({counts[0] * ranks}, DType::f32);
  const Tensor receive = Tensor::empty({counts[0] * ranks}, DType::f32);
  for_each_segment(send, shards, ranks, shard_length,
                   [&](int peer, std::size_t index, const Tensor& segment) {
                     const SequenceRows to = SequenceRows::of(segment, 2);
                     for (const LayoutRun& run : layout.runs(peer)) {
                       copy_rows(SequenceRows::of(heads[index], 2), run.global_begin, run.stride,
                                 to, run.local_begin, 1, run.valid_length);
                       fill_rows(to, run.local_begin + run.valid_length,
                                 run.length - run.valid_length, padding[index]);
                     }
                   });
  communicator.all_to_all_v(send, counts, receive, counts);
  for_each_segment(receive, shards, ranks, shard_length,
                   [&](int peer, std::size_t index, const Tensor& segment) {
                     const std::int64_t group = segment.size(1);
                     copy_rows(SequenceRows::of(segment, 1), 0, 1,
                               SequenceRows::of(shards[index], 1), peer * group, 1, group);
                   });
}

AttentionOptions options_of(const DistributedAttentionConfig& config) {
  AttentionOptions options;
  options.scale = config.scale;
  options.causal = config.causal;
  return options;
}

// Runs `exchange` and books its time as communication that nothing hides.
template <typename Exchange>
void timed_exchange(DistributedAttentionStats& stats, Exchange&& exchange) {
  const WallTimer timer;
  exchange();
  stats.communication_seconds += timer.seconds();
  stats.exposed_communication_seconds += timer.seconds();
}

}  // namespace

void head_parallel_attention_forward(ComputeContext& context, Communicator& communicator,
                                     const SequenceLayout& layout,
                                     const DistributedAttentionConfig& config, const Tensor& q,
                                     const Tensor& k, const Tensor& v, const Tensor& out,
                                     const Tensor& lse, DistributedAttentionStats& stats) {
  std::vector<Tensor> heads;  // q (B, H/P, N, D), k and v (B, Hkv/P, N, D)
  timed_exchange(stats, [&] { heads = sequence_to_heads(communicator, layout, {q, k, v}); });
  const Tensor head_out = Tensor::empty(heads[0].shape(), DType::f32);  // (B, H/P, N, D)
  const Tensor head_lse = Tensor::empty(                                // (B, H/P, N)
      {heads[0].size(0), heads[0].size(1), heads[0].size(2)}, DType::f32);
  const WallTimer compute;
  const auto kernel =
      config.kernel == AttentionKernel::flash ? flash_attention_forward : softmax_attention_forward;
  kernel(context, heads[0], heads[1], heads[2], options_of(config), head_out, head_lse);
  stats.compute_seconds += compute.seconds();
  ++stats.blocks_computed;
  timed_exchange(stats, [&] {
    heads_to_sequence(communicator, layout, {head_out, four_dimensional(head_lse)},
                      {out, four_dimensional(lse)},
                      {0.0f, -std::numeric_limits<float>::infinity()});
  });
}

void head_parallel_attention_backward(ComputeContext& context, Communicator& communicator,
                                      const SequenceLayout& layout,
                                      const DistributedAttentionConfig& config, const Tensor& q,
                                      const Tensor& k, const Tensor& v, const Tensor& out,
                                      const Tensor& lse, const Tensor& grad_out,
                                      const Tensor& grad_q, const Tensor& grad_k,
                                      const Tensor& grad_v, DistributedAttentionStats& stats) {
  std::vector<Tensor> heads;  // q, k, v, out, dO (B, H/P or Hkv/P, N, D), lse (B, H/P, N, 1)
  timed_exchange(stats, [&] {
    heads =
        sequence_to_heads(communicator, layout, {q, k, v, out, grad_out, four_dimensional(lse)});
  });
  const Tensor head_lse = heads[5].reshape({heads[5].size(0), heads[5].size(1), heads[5].size(2)});
  const Tensor head_grad_q = Tensor::empty(heads[0].shape(), DType::f32);
  const Tensor head_grad_k = Tensor::empty(heads[1].shape(), DType::f32);
  const Tensor head_grad_v = Tensor::empty(heads[2].shape(), DType::f32);
  const WallTimer compute;
  const auto kernel = config.kernel == AttentionKernel::flash ? flash_attention_backward
                                                              : softmax_attention_backward;
  kernel(context, heads[0], heads[1], heads[2], heads[3], head_lse, heads[4], options_of(config),
         head_grad_q, head_grad_k, head_grad_v);
  stats.compute_seconds += compute.seconds();
  ++stats.blocks_computed;
  timed_exchange(stats, [&] {
    heads_to_sequence(communicator, layout, {head_grad_q, head_grad_k, head_grad_v},
                      {grad_q, grad_k, grad_v}, {0.0f, 0.0f, 0.0f});
  });
}

}  // namespace longseq
