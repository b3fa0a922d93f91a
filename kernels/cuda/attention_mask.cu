#include <algorithm>
#include <vector>

#include "kernels/cuda/attention_mask.cuh"
#include "runtime/cuda/check.h"

namespace longseq::cuda {

namespace {

Tensor copy_to_device(const std::vector<std::uint8_t>& values, Shape shape, cudaStream_t stream) {
  Tensor device = Tensor::empty(std::move(shape), DType::u8, Device::cuda);
  // On the call's stream, so that the kernels after it see the data; from pageable memory the
  // call returns once `values` has been staged, so it may go away.
  CUDA_CHECK(cudaMemcpyAsync(device.raw_data(), values.data(), values.size(),
                             cudaMemcpyHostToDevice, stream));
  return device;
}

}  // namespace

DeviceAttentionMask::DeviceAttentionMask(const AttentionShape& shape,
                                         const AttentionOptions& options, long long tile,
                                         cudaStream_t stream) {
  mask_.causal = shape.causal;
  mask_.query_offset = shape.query_offset;
  mask_.key_offset = shape.key_offset;
  mask_.query_length = shape.query_length;
  mask_.key_length = shape.key_length;
  if (!options.block_mask.defined() || options.block_mask.numel() == 0) {
    return;
  }
  const Tensor& host_mask = options.block_mask;  // (mask rows, mask columns) u8 on the CPU
  const std::uint8_t* cells = host_mask.data<std::uint8_t>();
  const long long mask_columns = host_mask.size(1);
  const std::vector<std::uint8_t> values(cells, cells + host_mask.numel());
  block_mask_ = copy_to_device(values, host_mask.shape(), stream);
  mask_.block_mask = static_cast<const std::uint8_t*>(block_mask_.raw_data());
  mask_.mask_columns = mask_columns;
  mask_.mask_block_q = options.mask_block_q;
  mask_.mask_block_k = options.mask_block_k;
  if (tile <= 0) {
    return;
  }
  // Classify every tile from the mask cells it overlaps, so kernels skip hidden tiles at no cost.
  const long long query_tiles = (shape.query_length + tile - 1) / tile;
  const long long key_tiles = (shape.key_length + tile - 1) / tile;
  std::vector<std::uint8_t> classes(static_cast<std::size_t>(query_tiles * key_tiles));
  for (long long qt = 0; qt < query_tiles; ++qt) {
    const long long first_cell_row = qt * tile / options.mask_block_q;
    const long long last_cell_row =
        (std::min<long long>(qt * tile + tile, shape.query_length) - 1) / options.mask_block_q;
    for (long long kt = 0; kt < key_tiles; ++kt) {
      const long long first_cell_column = kt * tile / options.mask_block_k;
      const long long last_cell_column =
          (std::min<long long>(kt * tile + tile, shape.key_length) - 1) / options.mask_block_k;
      bool any_kept = false;
      bool any_removed = false;
      for (long long r = first_cell_row; r <= last_cell_row; ++r) {
        for (long long c = first_cell_column; c <= last_cell_column; ++c) {
          (cells[r * mask_columns + c] != 0 ? any_kept : any_removed) = true;
        }
      }
      const TileClass cls =
          !any_kept ? TileClass::hidden : (any_removed ? TileClass::partial : TileClass::visible);
      classes[static_cast<std::size_t>(qt * key_tiles + kt)] = static_cast<std::uint8_t>(cls);
    }
  }
  tile_classes_ = copy_to_device(classes, {query_tiles, key_tiles}, stream);
  mask_.tile_classes = static_cast<const TileClass*>(tile_classes_.raw_data());
  mask_.key_tiles = key_tiles;
}

}  // namespace longseq::cuda
