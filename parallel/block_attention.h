// One rank's queries attending one key/value shard (its own or another rank's), for one
// (batch, query head) at a time: the block computation that the ring and all-gather strategies
// share.
//
// The queries are the runs of this rank's layout, the keys the runs of the owner's. Every (query
// run, key run) pair is cut into pieces of at most query_chunk queries; a piece is one kernel call
// on valid rows only (padding is never passed in), causal masking comes from global positions,
// pieces that see no key are skipped without computing, and keys past the last visible one are
// trimmed off. Between pieces `between_pieces` runs: the ring drives its exchange from there.
//
// All runs of a layout share one stride t (1, or P for striped). Query i of a run starting at
// global a and key j of a run starting at global b are at a + i t and b + j t, so query i sees
// key j iff j <= i + floor((a - b) / t): causal with query_offset = floor((a - b) / t), key_offset
// 0.
#pragma once

#include <cstdint>
#include <functional>

#include "parallel/distributed_attention.h"

namespace longseq {

class BlockAttention {
 public:
  // Queries per kernel call while communication is in flight: often enough a test() of the
  // exchange, yet long enough calls that the kernel's threads stay busy.
  static constexpr std::int64_t kQueryChunk = 1024;

  // query_chunk (>= 1): the most queries per kernel call; it bounds the temporaries too.
  BlockAttention(ComputeContext& context, const SequenceLayout& layout, int rank,
                 const DistributedAttentionConfig& config, std::int64_t head_dim,
                 std::int64_t query_chunk, std::function<void()> between_pieces);

  // q_head, out_head (S, D) and lse_head (S): this rank's rows of one (batch, query head).
  // k_block, v_block (S, D): one (batch, key/value head) of the shard of rank `owner`.
  // Merges the block's partial result into out_head and lse_head (fp32; start them at 0, -inf).
  void forward(const Tensor& q_head, const Tensor& k_block, const Tensor& v_block, int owner,
               const Tensor& out_head, const Tensor& lse_head);

  // out_head, lse_head: the merged forward results. Adds the block's gradient contributions into
  // grad_q_head (S, D) and grad_k_block, grad_v_block (S, D).
  void backward(const Tensor& q_head, const Tensor& k_block, const Tensor& v_block, int owner,
                const Tensor& out_head, const Tensor& lse_head, const Tensor& grad_out_head,
                const Tensor& grad_q_head, const Tensor& grad_k_block, const Tensor& grad_v_block);

  [[nodiscard]] std::int64_t pieces_computed() const { return pieces_computed_; }
  [[nodiscard]] std::int64_t pieces_skipped() const { return pieces_skipped_; }
  [[nodiscard]] double compute_seconds() const { return compute_seconds_; }

 private:
  // A kernel call: rows [query_begin, query_begin + queries) of the query shard against rows
  // [key_begin, key_begin + keys) of the key shard, with the causal query offset of the call.
  struct Piece {
    std::int64_t query_begin = 0;
    std::int64_t queries = 0;
    std::int64_t key_begin = 0;
    std::int64_t keys = 0;
    std::int64_t query_offset = 0;
  };

  // Calls visit(piece) for every piece with a visible key, counting computed and skipped ones.
  template <typename Visit>
  void for_each_piece(int owner, Visit&& visit);
  [[nodiscard]] AttentionOptions options_for(const Piece& piece) const;

  ComputeContext& context_;
  const SequenceLayout& layout_;
  int rank_;
  DistributedAttentionConfig config_;
  std::int64_t head_dim_;
  std::int64_t query_chunk_;
  std::function<void()> between_pieces_;
  Tensor partial_out_;   // (query chunk, D)
  Tensor partial_lse_;   // (query chunk)
  Tensor grad_q_piece_;  // (query chunk, D)
  Tensor grad_k_piece_;  // (S, D)
  Tensor grad_v_piece_;  // (S, D)
  std::int64_t pieces_computed_ = 0;
  std::int64_t pieces_skipped_ = 0;
  double compute_seconds_ = 0;
};

// The rows of one (batch, head) of a contiguous (B, H, S, D) tensor as (S, D), or of a (B, H, S)
// tensor as (S).
Tensor head_slice(const Tensor& tensor, std::int64_t batch, std::int64_t head);

// into += addend: contiguous fp32 CPU tensors of the same size.
void accumulate(const Tensor& into, const Tensor& addend);

}  // namespace longseq
