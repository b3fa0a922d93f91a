// Which scores of one attention call are kept: causal masking from global positions and the
// user's block-sparse mask (kernels/attention.h). Kernels ask per tile first, skip hidden tiles,
// compute fully visible tiles without masking and mask partial tiles element by element, so
// their tiles need not line up with the blocks of the user's mask.
#pragma once

#include <cstdint>

#include "kernels/attention.h"
#include "kernels/common/softmax_math.h"

namespace longseq::cpu {

enum class TileVisibility { hidden, partial, visible };

class ScoreMask {
 public:
  ScoreMask(const AttentionShape& shape, const AttentionOptions& options)
      : causal_(shape.causal),
        query_offset_(shape.query_offset),
        key_offset_(shape.key_offset),
        blocks_(options.block_mask.defined() ? options.block_mask.data<std::uint8_t>() : nullptr),
        block_columns_(options.block_mask.defined() ? options.block_mask.size(1) : 0),
        block_rows_(options.mask_block_q),
        block_keys_(options.mask_block_k) {}

  // The tile of queries [query_begin, query_end) and keys [key_begin, key_end), both non-empty.
  [[nodiscard]] TileVisibility classify(std::int64_t query_begin, std::int64_t query_end,
                                        std::int64_t key_begin, std::int64_t key_end) const {
    bool all_visible = true;
    if (causal_) {
      if (!causally_visible(query_offset_ + query_end - 1, key_offset_ + key_begin)) {
        return TileVisibility::hidden;
      }
      all_visible = causally_visible(query_offset_ + query_begin, key_offset_ + key_end - 1);
    }
    if (blocks_ != nullptr) {
      bool any_kept = false;
      bool all_kept = true;
      for (std::int64_t row = query_begin / block_rows_; row <= (query_end - 1) / block_rows_;
           ++row) {
        for (std::int64_t column = key_begin / block_keys_; column <= (key_end - 1) / block_keys_;
             ++column) {
          const bool kept = blocks_[row * block_columns_ + column] != 0;
          any_kept = any_kept || kept;
          all_kept = all_kept && kept;
        }
      }
      if (!any_kept) {
        return TileVisibility::hidden;
      }
      all_visible = all_visible && all_kept;
    }
    return all_visible ? TileVisibility::visible : TileVisibility::partial;
  }

  [[nodiscard]] bool visible(std::int64_t query, std::int64_t key) const {
    if (causal_ && !causally_visible(query_offset_ + query, key_offset_ + key)) {
      return false;
    }
    return blocks_ == nullptr ||
           blocks_[(query / block_rows_) * block_columns_ + key / block_keys_] != 0;
  }

 private:
  bool causal_;
  std::int64_t query_offset_;
  std::int64_t key_offset_;
  const std::uint8_t* blocks_;  // (ceil(Nq / block_rows_), block_columns_), or null: dense
  std::int64_t block_columns_;
  std::int64_t block_rows_;
  std::int64_t block_keys_;
};

}  // namespace longseq::cpu
