#include "parallel/sequence_chunks.h"

#include <utility>

#include "parallel/sequence_rows.h"
#include "parallel/stats_scope.h"
#include "runtime/error.h"

namespace longseq {

namespace {

// `shape` with `count` positions at `sequence_dim`.
Shape with_positions(Shape shape, int sequence_dim, std::int64_t count) {
  shape[sequence_dim] = count;
  return shape;
}

// Elements of one position of `tensor` over all of its outer indices.
std::int64_t elements_per_position(const Tensor& tensor, int sequence_dim) {
  return tensor.numel() / tensor.size(sequence_dim);
}

}  // namespace

ChunkPlan::ChunkPlan(const SequenceLayout& layout, int rank) {
  const int ranks = layout.ranks();
  LONGSEQ_CHECK(layout.kind() != LayoutKind::striped || ranks == 1,
                "[chunk_plan] the striped layout has no chunks (use through_contiguous)");
  const bool zigzag = layout.kind() == LayoutKind::zigzag;
  const std::int64_t chunks = zigzag ? 2 * ranks : ranks;
  for (std::int64_t c = 0; c < chunks; ++c) {
    owners_.push_back(static_cast<int>(c < ranks ? c : chunks - 1 - c));
  }
  for (const LayoutRun& run : layout.runs(rank)) {
    chunks_.push_back(
        {run.global_begin / run.length, run.global_begin, run.local_begin, run.valid_length});
    indices_.push_back(chunks_.back().index);
  }
}

Tensor chunk_rows(const Tensor& shard, std::int64_t begin, std::int64_t count, int sequence_dim) {
  if (begin == 0 && count == shard.size(sequence_dim)) {
    return shard;
  }
  const Tensor rows =
      Tensor::empty(with_positions(shard.shape(), sequence_dim, count), shard.dtype());
  copy_rows(SequenceRows::of(shard, sequence_dim), begin, 1, SequenceRows::of(rows, sequence_dim),
            0, 1, count);
  return rows;
}

void place_rows(const Tensor& rows, const Tensor& shard, std::int64_t begin, int sequence_dim) {
  if (rows.raw_data() == shard.raw_data()) {
    return;
  }
  copy_rows(SequenceRows::of(rows, sequence_dim), 0, 1, SequenceRows::of(shard, sequence_dim),
            begin, 1, rows.size(sequence_dim));
}

std::vector<Tensor> redistribute(Communicator& communicator, const SequenceLayout& source,
                                 const SequenceLayout& target, const std::vector<Tensor>& from,
                                 const std::vector<int>& sequence_dims) {
  LONGSEQ_CHECK(from.size() == sequence_dims.size(), "[redistribute] {} tensors, {} dims",
                from.size(), sequence_dims.size());
  const int ranks = communicator.size();
  const int me = communicator.rank();
  // (sender local, receiver local) of the positions that move between this rank and each peer,
  // in increasing local order of the sender on both sides.
  std::vector<std::vector<std::pair<std::int64_t, std::int64_t>>> sends(ranks);
  std::vector<std::vector<std::pair<std::int64_t, std::int64_t>>> receives(ranks);
  for (int peer = 0; peer < ranks; ++peer) {
    for (std::int64_t local = 0; local < source.shard_length(); ++local) {
      const std::int64_t mine = source.global_position(me, local);
      if (mine < source.global_length()) {
        const auto [owner, at] = target.owner(mine);
        if (owner == peer) {
          sends[peer].emplace_back(local, at);
        }
      }
      const std::int64_t theirs = source.global_position(peer, local);
      if (theirs < source.global_length()) {
        const auto [owner, at] = target.owner(theirs);
        if (owner == me) {
          receives[peer].emplace_back(local, at);
        }
      }
    }
  }
  std::int64_t row_elements = 0;  // per position, over all tensors
  for (std::size_t i = 0; i < from.size(); ++i) {
    LONGSEQ_CHECK(from[i].dtype() == DType::f32, "[redistribute] fp32 shards only, got {}",
                  from[i].describe());
    row_elements += elements_per_position(from[i], sequence_dims[i]);
  }
  std::vector<std::int64_t> send_counts(ranks);
  std::vector<std::int64_t> receive_counts(ranks);
  std::int64_t send_total = 0;
  std::int64_t receive_total = 0;
  for (int peer = 0; peer < ranks; ++peer) {
    send_counts[peer] = static_cast<std::int64_t>(sends[peer].size()) * row_elements;
    receive_counts[peer] = static_cast<std::int64_t>(receives[peer].size()) * row_elements;
    send_total += send_counts[peer];
    receive_total += receive_counts[peer];
  }
  const Tensor send = Tensor::empty({send_total}, DType::f32);
  const Tensor receive = Tensor::empty({receive_total}, DType::f32);
  // The segment of one peer and tensor in a buffer: the tensor's shape with `count` positions.
  const auto segments = [&](const Tensor& buffer, const auto& lists, auto&& visit) {
    std::int64_t offset = 0;
    for (int peer = 0; peer < ranks; ++peer) {
      const auto count = static_cast<std::int64_t>(lists[peer].size());
      for (std::size_t i = 0; i < from.size(); ++i) {
        const std::int64_t elements = elements_per_position(from[i], sequence_dims[i]) * count;
        if (count > 0) {
          visit(peer, i,
                buffer.slice(0, offset, offset + elements)
                    .reshape(with_positions(from[i].shape(), sequence_dims[i], count)));
        }
        offset += elements;
      }
    }
  };
  segments(send, sends, [&](int peer, std::size_t i, const Tensor& segment) {
    for (std::size_t p = 0; p < sends[peer].size(); ++p) {
      copy_rows(SequenceRows::of(from[i], sequence_dims[i]), sends[peer][p].first, 1,
                SequenceRows::of(segment, sequence_dims[i]), static_cast<std::int64_t>(p), 1, 1);
    }
  });
  communicator.all_to_all_v(send, send_counts, receive, receive_counts);
  std::vector<Tensor> to;
  for (std::size_t i = 0; i < from.size(); ++i) {
    to.push_back(Tensor::zeros(
        with_positions(from[i].shape(), sequence_dims[i], target.shard_length()), DType::f32));
  }
  segments(receive, receives, [&](int peer, std::size_t i, const Tensor& segment) {
    for (std::size_t p = 0; p < receives[peer].size(); ++p) {
      copy_rows(SequenceRows::of(segment, sequence_dims[i]), static_cast<std::int64_t>(p), 1,
                SequenceRows::of(to[i], sequence_dims[i]), receives[peer][p].second, 1, 1);
    }
  });
  return to;
}

void through_contiguous(Communicator& communicator, const SequenceLayout& layout,
                        DistributedAttentionStats& stats, const std::vector<Tensor>& inputs,
                        const std::vector<int>& input_sequence_dims,
                        const std::vector<Tensor>& outputs,
                        const std::vector<int>& output_sequence_dims,
                        const ContiguousCompute& compute) {
  const SequenceLayout contiguous(LayoutKind::contiguous, layout.global_length(), layout.ranks());
  std::vector<Tensor> moved;
  timed_exposed_communication(stats, [&] {
    moved = redistribute(communicator, layout, contiguous, inputs, input_sequence_dims);
  });
  const std::vector<Tensor> results = compute(contiguous, moved);
  timed_exposed_communication(stats, [&] {
    const std::vector<Tensor> back =
        redistribute(communicator, contiguous, layout, results, output_sequence_dims);
    for (std::size_t i = 0; i < outputs.size(); ++i) {
      outputs[i].copy_from(back[i]);
    }
  });
}

void compute_on_chunks(Communicator& communicator, const SequenceLayout& layout,
                       DistributedAttentionStats& stats, const std::vector<Tensor>& inputs,
                       const std::vector<int>& input_sequence_dims,
                       const std::vector<Tensor>& outputs,
                       const std::vector<int>& output_sequence_dims,
                       const ChunkedCompute& compute) {
  if (layout.kind() != LayoutKind::striped || layout.ranks() == 1) {
    compute(layout, inputs, outputs);
    return;
  }
  through_contiguous(communicator, layout, stats, inputs, input_sequence_dims, outputs,
                     output_sequence_dims,
                     [&](const SequenceLayout& contiguous, const std::vector<Tensor>& moved) {
                       std::vector<Tensor> results;
                       for (std::size_t i = 0; i < outputs.size(); ++i) {
                         results.push_back(Tensor::zeros(
                             with_positions(outputs[i].shape(), output_sequence_dims[i],
                                            contiguous.shard_length()),
                             DType::f32));
                       }
                       compute(contiguous, moved, results);
                       return results;
                     });
}

}  // namespace longseq
