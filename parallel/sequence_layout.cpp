#include "parallel/sequence_layout.h"

#include <algorithm>

#include "parallel/sequence_rows.h"
#include "runtime/error.h"

namespace longseq {

namespace {

std::int64_t ceil_div(std::int64_t value, std::int64_t divisor) {
  return (value + divisor - 1) / divisor;
}

std::int64_t shard_length_of(LayoutKind kind, std::int64_t global_length, int ranks) {
  if (kind == LayoutKind::zigzag) {
    return 2 * ceil_div(global_length, 2 * static_cast<std::int64_t>(ranks));
  }
  return ceil_div(global_length, ranks);
}

// Number of positions begin, begin + stride, ... (length of them) below `limit`.
std::int64_t positions_below(std::int64_t begin, std::int64_t stride, std::int64_t length,
                             std::int64_t limit) {
  if (begin >= limit) {
    return 0;
  }
  return std::min(length, ceil_div(limit - begin, stride));
}

}  // namespace

std::string_view layout_name(LayoutKind kind) {
  switch (kind) {
    case LayoutKind::contiguous:
      return "contiguous";
    case LayoutKind::zigzag:
      return "zigzag";
    case LayoutKind::striped:
      return "striped";
  }
  return "unknown";
}

LayoutKind parse_layout(std::string_view name) {
  for (const LayoutKind kind : {LayoutKind::contiguous, LayoutKind::zigzag, LayoutKind::striped}) {
    if (name == layout_name(kind)) {
      return kind;
    }
  }
  throw UserError(LONGSEQ_FORMAT(
      "[sequence_layout] unknown layout '{}' (expected contiguous, zigzag or striped)", name));
}

SequenceLayout::SequenceLayout(LayoutKind kind, std::int64_t global_length, int ranks)
    : kind_(kind), global_length_(global_length), ranks_(ranks) {
  LONGSEQ_REQUIRE(ranks >= 1, "[sequence_layout] ranks must be at least 1, got {}", ranks);
  LONGSEQ_REQUIRE(global_length >= 1,
                  "[sequence_layout] sequence length must be at least 1, got {}", global_length);
  shard_length_ = shard_length_of(kind, global_length, ranks);
}

std::int64_t SequenceLayout::global_position(int rank, std::int64_t local) const {
  LONGSEQ_CHECK(rank >= 0 && rank < ranks_ && local >= 0 && local < shard_length_,
                "[sequence_layout] local index {} of rank {} outside {} ranks x {} positions",
                local, rank, ranks_, shard_length_);
  switch (kind_) {
    case LayoutKind::contiguous:
      return rank * shard_length_ + local;
    case LayoutKind::zigzag: {
      const std::int64_t chunk = shard_length_ / 2;
      const std::int64_t index = local < chunk ? rank : 2 * ranks_ - 1 - rank;
      return index * chunk + local % chunk;
    }
    case LayoutKind::striped:
      return local * ranks_ + rank;
  }
  return -1;
}

std::pair<int, std::int64_t> SequenceLayout::owner(std::int64_t global) const {
  LONGSEQ_CHECK(global >= 0 && global < padded_length(),
                "[sequence_layout] global position {} outside the padded length {}", global,
                padded_length());
  switch (kind_) {
    case LayoutKind::contiguous:
      return {static_cast<int>(global / shard_length_), global % shard_length_};
    case LayoutKind::zigzag: {
      const std::int64_t chunk = shard_length_ / 2;
      const std::int64_t index = global / chunk;
      if (index < ranks_) {
        return {static_cast<int>(index), global % chunk};
      }
      return {static_cast<int>(2 * ranks_ - 1 - index), chunk + global % chunk};
    }
    case LayoutKind::striped:
      return {static_cast<int>(global % ranks_), global / ranks_};
  }
  return {-1, -1};
}

std::vector<LayoutRun> SequenceLayout::runs(int rank) const {
  LONGSEQ_CHECK(rank >= 0 && rank < ranks_, "[sequence_layout] rank {} of {}", rank, ranks_);
  const auto make_run = [&](std::int64_t local_begin, std::int64_t global_begin,
                            std::int64_t stride, std::int64_t length) {
    return LayoutRun{local_begin, global_begin, stride, length,
                     positions_below(global_begin, stride, length, global_length_)};
  };
  switch (kind_) {
    case LayoutKind::contiguous:
      return {make_run(0, rank * shard_length_, 1, shard_length_)};
    case LayoutKind::zigzag: {
      const std::int64_t chunk = shard_length_ / 2;
      return {make_run(0, rank * chunk, 1, chunk),
              make_run(chunk, (2 * ranks_ - 1 - rank) * chunk, 1, chunk)};
    }
    case LayoutKind::striped:
      return {make_run(0, rank, ranks_, shard_length_)};
  }
  return {};
}

std::int64_t SequenceLayout::valid_length(int rank) const {
  std::int64_t valid = 0;
  for (const LayoutRun& run : runs(rank)) {
    valid += run.valid_length;
  }
  return valid;
}

namespace {

// The shape of `shape` with its dimension `dim` replaced by `length`.
Shape with_length(Shape shape, int dim, std::int64_t length) {
  shape[static_cast<std::size_t>(dim)] = length;
  return shape;
}

int resolved_dim(const char* op, const Tensor& tensor, int sequence_dim) {
  const int dim = sequence_dim < 0 ? sequence_dim + tensor.rank() : sequence_dim;
  LONGSEQ_CHECK(dim >= 0 && dim < tensor.rank(), "[{}] sequence dimension {} of {}", op,
                sequence_dim, tensor.describe());
  LONGSEQ_CHECK(tensor.device() == Device::cpu, "[{}] needs CPU tensors, got {}", op,
                tensor.describe());
  return dim;
}

}  // namespace

Tensor scatter_shard(const Tensor& full, const SequenceLayout& layout, int rank, int sequence_dim) {
  const int dim = resolved_dim("scatter_shard", full, sequence_dim);
  LONGSEQ_CHECK(full.size(dim) == layout.global_length(),
                "[scatter_shard] dimension {} of {} is not the sequence length {}", dim,
                full.describe(), layout.global_length());
  const Tensor source = full.contiguous();
  const Tensor shard =
      Tensor::zeros(with_length(full.shape(), dim, layout.shard_length()), full.dtype());
  const SequenceRows from = SequenceRows::of(source, dim);
  const SequenceRows to = SequenceRows::of(shard, dim);
  for (const LayoutRun& run : layout.runs(rank)) {
    copy_rows(from, run.global_begin, run.stride, to, run.local_begin, 1, run.valid_length);
  }
  return shard;
}

Tensor gather_shards(std::span<const Tensor> shards, const SequenceLayout& layout,
                     int sequence_dim) {
  LONGSEQ_CHECK(static_cast<int>(shards.size()) == layout.ranks(),
                "[gather_shards] {} shards for {} ranks", shards.size(), layout.ranks());
  const int dim = resolved_dim("gather_shards", shards.front(), sequence_dim);
  const Tensor full = Tensor::empty(
      with_length(shards.front().shape(), dim, layout.global_length()), shards.front().dtype());
  const SequenceRows to = SequenceRows::of(full, dim);
  for (int rank = 0; rank < layout.ranks(); ++rank) {
    const Tensor& shard = shards[static_cast<std::size_t>(rank)];
    LONGSEQ_CHECK(
        shard.shape() == shards.front().shape() && shard.size(dim) == layout.shard_length(),
        "[gather_shards] shard {} is {}, expected {} positions in dimension {}", rank,
        shard.describe(), layout.shard_length(), dim);
    const Tensor source = shard.contiguous();
    const SequenceRows from = SequenceRows::of(source, dim);
    for (const LayoutRun& run : layout.runs(rank)) {
      copy_rows(from, run.local_begin, 1, to, run.global_begin, run.stride, run.valid_length);
    }
  }
  return full;
}

}  // namespace longseq
