// How a sequence of N global positions is divided among P ranks.
//
//   contiguous  rank r holds [r S, (r + 1) S)                          S = shard length
//   zigzag      the sequence is cut into 2P chunks of S / 2; rank r holds chunks r and 2P - 1 - r,
//               which balances causal work (early chunks see few keys, late chunks many)
//   striped     rank r holds positions r, r + P, r + 2P, ...
//
// N need not divide: the sequence is padded at its end to P S positions (S even for zigzag).
// Padding positions are >= N; in every layout the padding of a run is a suffix of that run, so a
// kernel sees only the valid prefix of each run and no token is ever dropped or attended to.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "runtime/tensor.h"

namespace longseq {

enum class LayoutKind : std::uint8_t { contiguous, zigzag, striped };

std::string_view layout_name(LayoutKind kind);
// "contiguous", "zigzag" or "striped"; throws UserError otherwise.
LayoutKind parse_layout(std::string_view name);

// A maximal run of local positions whose global positions are equally spaced:
// local [local_begin, local_begin + length) holds global global_begin + i * stride.
// valid_length <= length counts the run's positions below N (a prefix of the run).
struct LayoutRun {
  std::int64_t local_begin = 0;
  std::int64_t global_begin = 0;
  std::int64_t stride = 1;
  std::int64_t length = 0;
  std::int64_t valid_length = 0;
};

class SequenceLayout {
 public:
  // Throws UserError for ranks < 1 or global_length < 1.
  SequenceLayout(LayoutKind kind, std::int64_t global_length, int ranks);

  [[nodiscard]] LayoutKind kind() const { return kind_; }
  [[nodiscard]] std::int64_t global_length() const { return global_length_; }
  [[nodiscard]] int ranks() const { return ranks_; }
  // Positions per rank, the same on every rank (padding included).
  [[nodiscard]] std::int64_t shard_length() const { return shard_length_; }
  [[nodiscard]] std::int64_t padded_length() const { return shard_length_ * ranks_; }

  // Global position of local index `local` on `rank` (>= global_length() for padding).
  [[nodiscard]] std::int64_t global_position(int rank, std::int64_t local) const;
  // The rank and local index holding a global position.
  [[nodiscard]] std::pair<int, std::int64_t> owner(std::int64_t global) const;
  // The runs of `rank`, in local order: one for contiguous, two for zigzag, one (stride P) for striped.
  [[nodiscard]] std::vector<LayoutRun> runs(int rank) const;
  // Number of non-padding positions on `rank`.
  [[nodiscard]] std::int64_t valid_length(int rank) const;

 private:
  LayoutKind kind_;
  std::int64_t global_length_;
  int ranks_;
  std::int64_t shard_length_;
};

// The shard of `rank` of a full CPU tensor whose dimension `sequence_dim` has N positions, e.g.
// (B, H, N, D) -> (B, H, S, D) or (B, H, N) -> (B, H, S); padding positions are zero.
Tensor scatter_shard(const Tensor& full, const SequenceLayout& layout, int rank, int sequence_dim = 2);
// All ranks' shards (rank order) -> the full tensor; padding is dropped.
Tensor gather_shards(std::span<const Tensor> shards, const SequenceLayout& layout, int sequence_dim = 2);

}  // namespace longseq
