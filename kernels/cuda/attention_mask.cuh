// Which (query, key) pairs an attention call may score: causal visibility from global positions
// and the optional block-sparse mask, per element and per square tile of the flash kernels.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/attention.h"
#include "kernels/common/softmax_math.h"
#include "runtime/tensor.h"

namespace longseq::cuda {

// How a (query tile, key tile) block of scores is covered by the mask.
enum class TileClass : std::uint8_t { hidden = 0, visible = 1, partial = 2 };

// Plain data, passed to kernels by value. Pointers are device pointers (or null).
struct AttentionMask {
  bool causal = false;
  long long query_offset = 0;
  long long key_offset = 0;
  long long query_length = 0;
  long long key_length = 0;
  const std::uint8_t* block_mask =
      nullptr;  // (ceil(Nq / mask_block_q), ceil(Nk / mask_block_k)) or null
  long long mask_columns = 0;
  long long mask_block_q = 1;
  long long mask_block_k = 1;
  const TileClass* tile_classes = nullptr;  // (query tiles, key tiles) of the block mask, or null
  long long key_tiles = 0;
};

// Whether query row `row` (0-based in this call) may score key row `column`.
LONGSEQ_HOST_DEVICE bool element_visible(const AttentionMask& mask, long long row,
                                         long long column) {
  if (row >= mask.query_length || column >= mask.key_length) {
    return false;
  }
  if (mask.causal && !causally_visible(mask.query_offset + row, mask.key_offset + column)) {
    return false;
  }
  return mask.block_mask == nullptr ||
         mask.block_mask[(row / mask.mask_block_q) * mask.mask_columns +
                         column / mask.mask_block_k] != 0;
}

struct TileVisibility {
  bool any = false;      // some pair of the tile is visible: the tile must be computed
  bool partial = false;  // some pair is not: scores need per-element masking
};

// Rows [query_tile * tile, +tile) and columns [key_tile * tile, +tile), clipped to the call.
LONGSEQ_HOST_DEVICE TileVisibility classify_tile(const AttentionMask& mask, long long query_tile,
                                                 long long key_tile, long long tile) {
  const long long first_row = query_tile * tile;
  const long long first_column = key_tile * tile;
  const long long last_row =
      (first_row + tile < mask.query_length ? first_row + tile : mask.query_length) - 1;
  const long long last_column =
      (first_column + tile < mask.key_length ? first_column + tile : mask.key_length) - 1;
  TileVisibility visibility{
      true, first_row + tile > mask.query_length || first_column + tile > mask.key_length};
  if (mask.causal) {
    if (!causally_visible(mask.query_offset + last_row, mask.key_offset + first_column)) {
      return TileVisibility{};
    }
    if (!causally_visible(mask.query_offset + first_row, mask.key_offset + last_column)) {
      visibility.partial = true;
    }
  }
  if (mask.tile_classes != nullptr) {
    const TileClass cls = mask.tile_classes[query_tile * mask.key_tiles + key_tile];
    if (cls == TileClass::hidden) {
      return TileVisibility{};
    }
    if (cls == TileClass::partial) {
      visibility.partial = true;
    }
  }
  return visibility;
}

// The mask of one call with its block mask (and, for tile > 0, the block mask's classification
// of tile x tile blocks) copied to the device on `stream`; the buffers live as long as this object.
class DeviceAttentionMask {
 public:
  DeviceAttentionMask(const AttentionShape& shape, const AttentionOptions& options, long long tile,
                      cudaStream_t stream);
  [[nodiscard]] const AttentionMask& get() const { return mask_; }

 private:
  Tensor block_mask_;    // u8 (mask rows, mask columns) on the device
  Tensor tile_classes_;  // u8 (query tiles, key tiles) on the device
  AttentionMask mask_;
};

}  // namespace longseq::cuda
