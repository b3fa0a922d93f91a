// Distributed chunked local attention on every rank count (run under mpirun -np 1..4): for every
// layout x sequence length (dividing evenly or not) x chunk size (1, not dividing the shards,
// longer than a shard so that a halo spans ranks, and at least N), the outputs, LSEs and
// gradients of every rank's shard equal single-rank chunked local attention, computed by the
// plain-loop reference with a block-diagonal mask of chunk-sized blocks (blocks aligned at
// multiples of the chunk are exactly the chunks). With chunk >= N they equal full causal flash
// attention. Every rank draws the same full inputs (Philox) and computes the references itself.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "kernels/attention.h"
#include "kernels/reference.h"
#include "parallel/local_attention_parallel.h"
#include "parallel/mpi_communicator.h"
#include "tests/parallel/mpi/multi_rank_test.h"
#include "tests/parallel/mpi/shard_comparison.h"

namespace longseq {
namespace {

using namespace std::chrono_literals;

// fp32 flash against the double-accumulating reference: a few ulps of the largest value.
constexpr double kTolerance = 2e-5;
constexpr std::uint64_t kSeed = 2025;  // of the inputs' random streams
constexpr std::int64_t kBatch = 2;
constexpr std::int64_t kHeads = 2;
constexpr std::int64_t kHeadDim = 16;

struct LocalCase {
  LayoutKind layout;
  std::int64_t length;
  std::int64_t chunk;
};

std::string case_name(const testing::TestParamInfo<LocalCase>& info) {
  const LocalCase& c = info.param;
  return std::string(layout_name(c.layout)) + "_N" + std::to_string(c.length) + "_chunk" +
         std::to_string(c.chunk);
}

void PrintTo(const LocalCase& c, std::ostream* os) {
  *os << layout_name(c.layout) << " N=" << c.length << " chunk=" << c.chunk;
}

std::vector<LocalCase> local_cases() {
  std::vector<LocalCase> cases;
  for (const LayoutKind layout :
       {LayoutKind::contiguous, LayoutKind::zigzag, LayoutKind::striped}) {
    for (const std::int64_t length : {64, 61}) {
      for (const std::int64_t chunk : {1, 5, 24, 40, 64, 100}) {
        cases.push_back({layout, length, chunk});
      }
    }
  }
  return cases;
}

// Causal attention whose blocks of chunk x chunk scores on the diagonal are the only ones kept.
AttentionOptions chunked_options(std::int64_t length, std::int64_t chunk) {
  const std::int64_t blocks = (length + chunk - 1) / chunk;
  AttentionOptions options;
  options.causal = true;
  options.block_mask = Tensor::zeros({blocks, blocks}, DType::u8);
  for (std::int64_t b = 0; b < blocks; ++b) {
    options.block_mask.data<std::uint8_t>()[b * blocks + b] = 1;
  }
  options.mask_block_q = chunk;
  options.mask_block_k = chunk;
  return options;
}

using DistributedLocalAttentionTest = MultiRankTest<LocalCase>;

TEST_P(DistributedLocalAttentionTest, ShardsEqualSingleRank) {
  const LocalCase& c = GetParam();
  const Shape shape{kBatch, kHeads, c.length, kHeadDim};
  const Tensor q = normal(context_, shape, kSeed, 1);
  const Tensor k = normal(context_, shape, kSeed, 2);
  const Tensor v = normal(context_, shape, kSeed, 3);
  const Tensor grad_out = normal(context_, shape, kSeed, 4);
  const AttentionOptions options = chunked_options(c.length, c.chunk);
  const Tensor out = Tensor::empty(shape, DType::f32);
  const Tensor lse = Tensor::empty({kBatch, kHeads, c.length}, DType::f32);
  reference::attention_forward(q, k, v, options, out, lse);
  const Tensor grad_q = Tensor::empty(shape, DType::f32);
  const Tensor grad_k = Tensor::empty(shape, DType::f32);
  const Tensor grad_v = Tensor::empty(shape, DType::f32);
  reference::attention_backward(q, k, v, grad_out, options, grad_q, grad_k, grad_v);

  const int rank = world_.rank();
  const SequenceLayout layout(c.layout, c.length, world_.size());
  const Tensor shard_q = scatter_shard(q, layout, rank);
  const Tensor shard_k = scatter_shard(k, layout, rank);
  const Tensor shard_v = scatter_shard(v, layout, rank);
  const Tensor shard_grad_out = scatter_shard(grad_out, layout, rank);
  LocalAttentionConfig config;
  config.chunk = c.chunk;
  const Tensor shard_out = Tensor::empty(shard_q.shape(), DType::f32);
  const Tensor shard_lse = Tensor::empty({kBatch, kHeads, layout.shard_length()}, DType::f32);
  DistributedAttentionStats stats;
  distributed_local_attention_forward(context_, world_, layout, config, shard_q, shard_k, shard_v,
                                      shard_out, shard_lse, &stats);
  EXPECT_LE(shard_relative_error(shard_out, out, layout, rank), kTolerance) << "out";
  EXPECT_LE(
      shard_relative_error(shard_lse, lse, layout, rank, -std::numeric_limits<float>::infinity()),
      kTolerance)
      << "lse";
  // Only a chunk that starts before a run's first position makes a halo to send (the striped
  // layout moves its shards to the contiguous one and back).
  if (world_.size() == 1 || (c.chunk == 1 && c.layout != LayoutKind::striped)) {
    EXPECT_EQ(stats.bytes_sent, 0) << "a single rank or one-position chunks exchange nothing";
  }

  const Tensor shard_grad_q = Tensor::empty(shard_q.shape(), DType::f32);
  const Tensor shard_grad_k = Tensor::empty(shard_k.shape(), DType::f32);
  const Tensor shard_grad_v = Tensor::empty(shard_v.shape(), DType::f32);
  distributed_local_attention_backward(context_, world_, layout, config, shard_q, shard_k, shard_v,
                                       shard_out, shard_lse, shard_grad_out, shard_grad_q,
                                       shard_grad_k, shard_grad_v);
  EXPECT_LE(shard_relative_error(shard_grad_q, grad_q, layout, rank), kTolerance) << "grad_q";
  EXPECT_LE(shard_relative_error(shard_grad_k, grad_k, layout, rank), kTolerance) << "grad_k";
  EXPECT_LE(shard_relative_error(shard_grad_v, grad_v, layout, rank), kTolerance) << "grad_v";

  if (c.chunk >= c.length) {
    AttentionOptions causal;
    causal.causal = true;
    const Tensor full_out = Tensor::empty(shape, DType::f32);
    const Tensor full_lse = Tensor::empty({kBatch, kHeads, c.length}, DType::f32);
    flash_attention_forward(context_, q, k, v, causal, full_out, full_lse);
    EXPECT_LE(shard_relative_error(shard_out, full_out, layout, rank), kTolerance)
        << "out against full causal attention";
    const Tensor full_grad_k = Tensor::empty(shape, DType::f32);
    flash_attention_backward(context_, q, k, v, full_out, full_lse, grad_out, causal,
                             Tensor::empty(shape, DType::f32), full_grad_k,
                             Tensor::empty(shape, DType::f32));
    EXPECT_LE(shard_relative_error(shard_grad_k, full_grad_k, layout, rank), kTolerance)
        << "grad_k against full causal attention";
  }
}

INSTANTIATE_TEST_SUITE_P(Local, DistributedLocalAttentionTest, testing::ValuesIn(local_cases()),
                         case_name);

// Bad configurations are the caller's error, named as such.
TEST(DistributedLocalAttention, RejectsAnEmptyChunk) {
  ComputeContext context(1);
  MpiCommunicator world(MPI_COMM_WORLD, "world", 60s);
  const SequenceLayout layout(LayoutKind::contiguous, 16, world.size());
  const Tensor x = Tensor::zeros({1, 1, layout.shard_length(), 8}, DType::f32);
  LocalAttentionConfig config;
  config.chunk = 0;
  EXPECT_THROW(distributed_local_attention_forward(
                   context, world, layout, config, x, x, x, Tensor::empty(x.shape(), DType::f32),
                   Tensor::empty({1, 1, layout.shard_length()}, DType::f32)),
               UserError);
}

}  // namespace
}  // namespace longseq
