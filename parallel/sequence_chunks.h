// The chunked view of a sharded sequence that the state-passing mixers share: which chunks of
// consecutive global positions a rank holds (contiguous: one per rank; zigzag: two), their rows as
// contiguous tensors, and the detour of the striped layout through the contiguous one.
//
// How a state-passing mixer uses it (parallel/linear_attention_parallel.cpp is the worked example):
//   1. ChunkPlan(layout, rank) lists this rank's chunks in increasing global order; owners() and
//      indices() are what exclusive_state_scan (parallel/state_scan.h) takes.
//   2. chunk_rows() cuts each chunk's valid rows out of the shard; each chunk summarises its rows
//      into a state; the states are scanned; each chunk computes from its incoming state and
//      place_rows() writes its results back.
//   3. A striped layout has no runs of consecutive positions: through_contiguous() redistributes
//      the inputs to the contiguous layout, runs the computation there and brings the outputs back;
//      compute_on_chunks() takes that detour only where the layout needs it.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "parallel/communicator.h"
#include "parallel/distributed_attention.h"
#include "parallel/sequence_layout.h"
#include "runtime/tensor.h"

namespace longseq {

// One chunk of the sequence on this rank: its index in chunk order (0 .. chunks - 1, increasing
// global position), its first global position, and where its valid rows sit in the shard.
struct SequenceChunk {
  std::int64_t index = 0;
  std::int64_t global_begin = 0;
  std::int64_t local_begin = 0;
  std::int64_t valid = 0;
};

// The chunks of a contiguous or zigzag layout (a striped layout with one rank is contiguous).
class ChunkPlan {
 public:
  ChunkPlan(const SequenceLayout& layout, int rank);

  [[nodiscard]] const std::vector<SequenceChunk>& chunks() const { return chunks_; }
  // owners()[c]: the rank holding chunk c.
  [[nodiscard]] const std::vector<int>& owners() const { return owners_; }
  // This rank's chunk indices, increasing.
  [[nodiscard]] const std::vector<std::int64_t>& indices() const { return indices_; }
  // One chunk in all: nothing to scan.
  [[nodiscard]] bool alone() const { return owners_.size() == 1; }

 private:
  std::vector<SequenceChunk> chunks_;
  std::vector<int> owners_;
  std::vector<std::int64_t> indices_;
};

// Rows [begin, begin + count) along `sequence_dim` of a contiguous fp32 CPU shard, as a
// contiguous tensor: the shard itself when that is all of it, a copy otherwise.
Tensor chunk_rows(const Tensor& shard, std::int64_t begin, std::int64_t count,
                  int sequence_dim = 2);
// Writes a chunk's rows back into the shard at `begin` (a no-op when they are the shard).
void place_rows(const Tensor& rows, const Tensor& shard, std::int64_t begin, int sequence_dim = 2);

// Moves the shards `from` (layout `source`, each a contiguous fp32 CPU tensor with its positions
// at sequence_dims[i]) into new zero-padded shards in layout `target`, with one all_to_all_v.
std::vector<Tensor> redistribute(Communicator& communicator, const SequenceLayout& source,
                                 const SequenceLayout& target, const std::vector<Tensor>& from,
                                 const std::vector<int>& sequence_dims);

// Runs `compute(contiguous_layout, inputs_in_that_layout)` and copies what it returns into
// `outputs` (shards of `layout`); the redistribution time counts as exposed communication.
using ContiguousCompute = std::function<std::vector<Tensor>(const SequenceLayout& contiguous,
                                                            const std::vector<Tensor>& inputs)>;
void through_contiguous(Communicator& communicator, const SequenceLayout& layout,
                        DistributedAttentionStats& stats, const std::vector<Tensor>& inputs,
                        const std::vector<int>& input_sequence_dims,
                        const std::vector<Tensor>& outputs,
                        const std::vector<int>& output_sequence_dims,
                        const ContiguousCompute& compute);

// Runs `compute(chunked_layout, inputs, outputs)`, which writes every element of the outputs, on a
// layout with chunks: `layout` itself when it has them (contiguous, zigzag, or striped over one
// rank); otherwise through_contiguous, with inputs and outputs redistributed, the outputs there
// zero-filled fp32 shards of the contiguous layout.
using ChunkedCompute =
    std::function<void(const SequenceLayout& chunked, const std::vector<Tensor>& inputs,
                       const std::vector<Tensor>& outputs)>;
void compute_on_chunks(Communicator& communicator, const SequenceLayout& layout,
                       DistributedAttentionStats& stats, const std::vector<Tensor>& inputs,
                       const std::vector<int>& input_sequence_dims,
                       const std::vector<Tensor>& outputs,
                       const std::vector<int>& output_sequence_dims, const ChunkedCompute& compute);

}  // namespace longseq
