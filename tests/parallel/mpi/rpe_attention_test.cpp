// Distributed rpe attention on every rank count (run under mpirun -np 1..4): for every layout x
// causal x sequence length (dividing evenly or not), the outputs and the gradients of q, k, v on
// every rank's shard, and the gradient of b on every rank, equal one-rank rpe attention over the
// whole sequence. Every rank draws the same full inputs (Philox) and computes the reference.
#include "kernels/rpe_attention.h"

#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "parallel/mpi_communicator.h"
#include "parallel/rpe_attention_parallel.h"
#include "tests/parallel/mpi/multi_rank_test.h"
#include "tests/parallel/mpi/shard_comparison.h"

namespace longseq {
namespace {

// The FFT lengths differ with the block sizes, so the round-off differs from one pass's: a few
// 1e-7 of the largest value in the outputs. The readout gradient (a difference of two terms,
// g / den and (g . out) / den) amplifies it where a row sees only small weights: up to about 4e-5
// measured for causal rows near the start.
constexpr double kTolerance = 1e-5;
constexpr std::uint64_t kSeed = 2026;  // of the inputs' random streams
constexpr double kGradientTolerance = 1e-4;
constexpr std::int64_t kBatch = 2;
constexpr std::int64_t kHeads = 2;
constexpr std::int64_t kKeyDim = 6;
constexpr std::int64_t kValueDim = 5;

struct RpeCase {
  LayoutKind layout;
  bool causal;
  std::int64_t length;
};

std::string case_name(const testing::TestParamInfo<RpeCase>& info) {
  const RpeCase& c = info.param;
  return std::string(layout_name(c.layout)) + (c.causal ? "_causal" : "_full") + "_N" +
         std::to_string(c.length);
}

void PrintTo(const RpeCase& c, std::ostream* os) {
  *os << layout_name(c.layout) << (c.causal ? " causal" : " full") << " N=" << c.length;
}

std::vector<RpeCase> rpe_cases() {
  std::vector<RpeCase> cases;
  for (const LayoutKind layout :
       {LayoutKind::contiguous, LayoutKind::zigzag, LayoutKind::striped}) {
    for (const bool causal : {true, false}) {
      for (const std::int64_t length : {96, 101}) {
        cases.push_back({layout, causal, length});
      }
    }
  }
  return cases;
}

using DistributedRpeAttentionTest = MultiRankTest<RpeCase>;

TEST_P(DistributedRpeAttentionTest, ShardsEqualSingleRank) {
  const RpeCase& c = GetParam();
  const Shape key_shape{kBatch, kHeads, c.length, kKeyDim};
  const Shape value_shape{kBatch, kHeads, c.length, kValueDim};
  const Tensor q = normal(context_, key_shape, kSeed, 1, 1.0f);
  const Tensor k = normal(context_, key_shape, kSeed, 2, 1.0f);
  const Tensor v = normal(context_, value_shape, kSeed, 3, 1.0f);
  const Tensor b = normal(context_, {kHeads, 2 * c.length - 1}, kSeed, 4, 0.5f);
  const Tensor grad_out = normal(context_, value_shape, kSeed, 5, 1.0f);
  RpeAttentionOptions options;
  options.causal = c.causal;
  const Tensor out = Tensor::empty(value_shape, DType::f32);
  rpe_attention_forward(context_, q, k, v, b, options, out);
  const Tensor grad_q = Tensor::empty(key_shape, DType::f32);
  const Tensor grad_k = Tensor::empty(key_shape, DType::f32);
  const Tensor grad_v = Tensor::empty(value_shape, DType::f32);
  const Tensor grad_b = Tensor::empty(b.shape(), DType::f32);
  rpe_attention_backward(context_, q, k, v, b, grad_out, options, grad_q, grad_k, grad_v, grad_b);

  const int rank = world_.rank();
  const SequenceLayout layout(c.layout, c.length, world_.size());
  const Tensor shard_q = scatter_shard(q, layout, rank);
  const Tensor shard_k = scatter_shard(k, layout, rank);
  const Tensor shard_v = scatter_shard(v, layout, rank);
  const Tensor shard_grad_out = scatter_shard(grad_out, layout, rank);
  RpeAttentionParallelConfig config;
  config.causal = c.causal;
  const Tensor shard_out = Tensor::empty(shard_v.shape(), DType::f32);
  distributed_rpe_attention_forward(context_, world_, layout, config, shard_q, shard_k, shard_v, b,
                                    shard_out);
  EXPECT_LE(shard_relative_error(shard_out, out, layout, rank), kTolerance) << "out";
  const Tensor shard_grad_q = Tensor::empty(shard_q.shape(), DType::f32);
  const Tensor shard_grad_k = Tensor::empty(shard_k.shape(), DType::f32);
  const Tensor shard_grad_v = Tensor::empty(shard_v.shape(), DType::f32);
  const Tensor distributed_grad_b = Tensor::empty(b.shape(), DType::f32);
  DistributedAttentionStats stats;
  distributed_rpe_attention_backward(context_, world_, layout, config, shard_q, shard_k, shard_v, b,
                                     shard_grad_out, shard_grad_q, shard_grad_k, shard_grad_v,
                                     distributed_grad_b, &stats);
  EXPECT_LE(shard_relative_error(shard_grad_q, grad_q, layout, rank), kGradientTolerance)
      << "grad_q";
  EXPECT_LE(shard_relative_error(shard_grad_k, grad_k, layout, rank), kGradientTolerance)
      << "grad_k";
  EXPECT_LE(shard_relative_error(shard_grad_v, grad_v, layout, rank), kGradientTolerance)
      << "grad_v";
  EXPECT_LE(relative_error(distributed_grad_b, grad_b), kGradientTolerance) << "grad_b";
  if (world_.size() > 1) {
    EXPECT_GT(stats.bytes_sent, 0);
  }
  if (c.causal && c.layout == LayoutKind::contiguous && rank < world_.size() - 1) {
    EXPECT_GT(stats.blocks_skipped, 0) << "key shards after all of this rank's queries are skipped";
  }
}

INSTANTIATE_TEST_SUITE_P(Rpe, DistributedRpeAttentionTest, testing::ValuesIn(rpe_cases()),
                         case_name);

}  // namespace
}  // namespace longseq
