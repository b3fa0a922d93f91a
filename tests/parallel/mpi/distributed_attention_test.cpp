// Distributed attention on every rank count (run under mpirun -np 1..4): for every strategy x
// layout x causal x sequence length (dividing evenly or not) x head configuration, the outputs,
// LSEs and gradients of every rank's shard equal single-rank flash attention over the whole
// sequence within 1e-5 relative. Every rank draws the same full inputs (Philox), so each rank
// computes the reference itself and compares its own shard; nothing is gathered.
#include "parallel/distributed_attention.h"

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
#include "parallel/mpi_communicator.h"
#include "tests/parallel/mpi/shard_comparison.h"

namespace longseq {
namespace {

using namespace std::chrono_literals;

constexpr double kTolerance = 1e-5;
// What the log-sum-exp holds at padding positions (no keys: log 0).
constexpr float kLsePadding = -std::numeric_limits<float>::infinity();
constexpr std::chrono::milliseconds kTestTimeout = 60s;

struct HeadConfig {
  std::int64_t batch;
  std::int64_t heads;
  std::int64_t kv_heads;
  std::int64_t head_dim;
};

struct AttentionCase {
  AttentionStrategy strategy;
  LayoutKind layout;
  bool causal;
  std::int64_t length;
  HeadConfig heads;
};

std::string case_name(const testing::TestParamInfo<AttentionCase>& info) {
  const AttentionCase& c = info.param;
  return std::string(strategy_name(c.strategy)) + "_" + std::string(layout_name(c.layout)) +
         (c.causal ? "_causal" : "_full") + "_N" + std::to_string(c.length) + "_B" +
         std::to_string(c.heads.batch) + "H" + std::to_string(c.heads.heads) + "Hkv" +
         std::to_string(c.heads.kv_heads) + "D" + std::to_string(c.heads.head_dim);
}

void PrintTo(const AttentionCase& c, std::ostream* os) {
  *os << strategy_name(c.strategy) << " " << layout_name(c.layout)
      << (c.causal ? " causal" : " full") << " N=" << c.length;
}

std::vector<AttentionCase> attention_cases() {
  std::vector<AttentionCase> cases;
  for (const AttentionStrategy strategy :
       {AttentionStrategy::ring, AttentionStrategy::all_to_all, AttentionStrategy::all_gather}) {
    for (const LayoutKind layout :
         {LayoutKind::contiguous, LayoutKind::zigzag, LayoutKind::striped}) {
      for (const bool causal : {true, false}) {
        cases.push_back({strategy, layout, causal, 256, {1, 4, 4, 32}});
        cases.push_back({strategy, layout, causal, 193, {2, 4, 2, 64}});
      }
    }
  }
  return cases;
}

// Everything one case needs, full-size (the reference) and as this rank's shards.
struct Problem {
  Tensor q, k, v, grad_out;       // full inputs (B, H or Hkv, N, D)
  Tensor out, lse;                // reference forward (B, H, N, D), (B, H, N)
  Tensor grad_q, grad_k, grad_v;  // reference gradients
};

// The seed of every input of these tests.
constexpr std::uint64_t kSeed = 2024;

Problem reference_problem(ComputeContext& context, const AttentionCase& c) {
  const HeadConfig& h = c.heads;
  Problem p;
  p.q = normal(context, {h.batch, h.heads, c.length, h.head_dim}, kSeed, 1);
  p.k = normal(context, {h.batch, h.kv_heads, c.length, h.head_dim}, kSeed, 2);
  p.v = normal(context, {h.batch, h.kv_heads, c.length, h.head_dim}, kSeed, 3);
  p.grad_out = normal(context, p.q.shape(), kSeed, 4);
  p.out = Tensor::empty(p.q.shape(), DType::f32);
  p.lse = Tensor::empty({h.batch, h.heads, c.length}, DType::f32);
  p.grad_q = Tensor::empty(p.q.shape(), DType::f32);
  p.grad_k = Tensor::empty(p.k.shape(), DType::f32);
  p.grad_v = Tensor::empty(p.k.shape(), DType::f32);
  AttentionOptions options;
  options.causal = c.causal;
  flash_attention_forward(context, p.q, p.k, p.v, options, p.out, p.lse);
  flash_attention_backward(context, p.q, p.k, p.v, p.out, p.lse, p.grad_out, options, p.grad_q,
                           p.grad_k, p.grad_v);
  return p;
}

class DistributedAttentionTest : public testing::TestWithParam<AttentionCase> {
 protected:
  ComputeContext context_{1};
  MpiCommunicator world_{MPI_COMM_WORLD, "world", kTestTimeout};
};

TEST_P(DistributedAttentionTest, EqualsSingleRankFlashAttention) {
  const AttentionCase& c = GetParam();
  const int rank = world_.rank();
  const int ranks = world_.size();
  const SequenceLayout layout(c.layout, c.length, ranks);
  const Problem p = reference_problem(context_, c);
  const Tensor q = scatter_shard(p.q, layout, rank);
  const Tensor k = scatter_shard(p.k, layout, rank);
  const Tensor v = scatter_shard(p.v, layout, rank);
  const Tensor grad_out = scatter_shard(p.grad_out, layout, rank);
  const Tensor out = Tensor::empty(q.shape(), DType::f32);
  const Tensor lse = Tensor::empty({q.size(0), q.size(1), q.size(2)}, DType::f32);
  const Tensor grad_q = Tensor::empty(q.shape(), DType::f32);
  const Tensor grad_k = Tensor::empty(k.shape(), DType::f32);
  const Tensor grad_v = Tensor::empty(k.shape(), DType::f32);
  DistributedAttentionConfig config;
  config.strategy = c.strategy;
  config.causal = c.causal;

  const bool heads_split = c.heads.heads % ranks == 0 && c.heads.kv_heads % ranks == 0;
  if (c.strategy == AttentionStrategy::all_to_all && !heads_split) {
    EXPECT_THROW(distributed_attention_forward(context_, world_, layout, config, q, k, v, out, lse),
                 UserError);
    EXPECT_THROW(distributed_attention_backward(context_, world_, layout, config, q, k, v, out, lse,
                                                grad_out, grad_q, grad_k, grad_v),
                 UserError);
    return;
  }
  distributed_attention_forward(context_, world_, layout, config, q, k, v, out, lse);
  distributed_attention_backward(context_, world_, layout, config, q, k, v, out, lse, grad_out,
                                 grad_q, grad_k, grad_v);
  EXPECT_LE(shard_relative_error(out, p.out, layout, rank), kTolerance) << "out, rank " << rank;
  EXPECT_LE(shard_relative_error(lse, p.lse, layout, rank, kLsePadding), kTolerance)
      << "lse, rank " << rank;
  EXPECT_LE(shard_relative_error(grad_q, p.grad_q, layout, rank), kTolerance)
      << "dq, rank " << rank;
  EXPECT_LE(shard_relative_error(grad_k, p.grad_k, layout, rank), kTolerance)
      << "dk, rank " << rank;
  EXPECT_LE(shard_relative_error(grad_v, p.grad_v, layout, rank), kTolerance)
      << "dv, rank " << rank;
}

INSTANTIATE_TEST_SUITE_P(Strategies, DistributedAttentionTest, testing::ValuesIn(attention_cases()),
                         case_name);

class RingAttentionTest : public testing::Test {
 protected:
  ComputeContext context_{1};
  MpiCommunicator world_{MPI_COMM_WORLD, "world", kTestTimeout};
};

// Contiguous causal: rank r sees blocks 0..r and must skip the P - 1 - r later ones per head
// (shards are shorter than one query chunk, so each (block, head) is one kernel call); the
// forward ring sends every block but the last step's on, K and V each once.
TEST_F(RingAttentionTest, SkipsFullyMaskedBlocksAndCountsBytes) {
  const int rank = world_.rank();
  const int ranks = world_.size();
  const std::int64_t heads = 2;
  const std::int64_t head_dim = 16;
  const SequenceLayout layout(LayoutKind::contiguous, 64 * ranks, ranks);
  const Shape shape{1, heads, layout.shard_length(), head_dim};
  const Tensor q = normal(context_, shape, kSeed, 5);
  const Tensor out = Tensor::empty(shape, DType::f32);
  const Tensor lse = Tensor::empty({1, heads, layout.shard_length()}, DType::f32);
  for (const bool causal : {true, false}) {
    DistributedAttentionConfig config;
    config.causal = causal;
    DistributedAttentionStats stats;
    distributed_attention_forward(context_, world_, layout, config, q, q, q, out, lse, &stats);
    const std::int64_t visible_blocks = causal ? rank + 1 : ranks;
    EXPECT_EQ(stats.blocks_computed, heads * visible_blocks) << "causal " << causal;
    EXPECT_EQ(stats.blocks_skipped, heads * (ranks - visible_blocks)) << "causal " << causal;
    EXPECT_EQ(stats.bytes_sent, (ranks - 1) * 2 * q.numel() * 4);
    EXPECT_GE(stats.communication_seconds, stats.exposed_communication_seconds);
    EXPECT_GT(stats.compute_seconds, 0.0);
  }
}

// The materialised kernel computes every block the same way as flash.
TEST_F(RingAttentionTest, SoftmaxKernelMatchesFlash) {
  const int rank = world_.rank();
  const AttentionCase c{AttentionStrategy::ring, LayoutKind::zigzag, true, 150, {1, 2, 1, 32}};
  const SequenceLayout layout(c.layout, c.length, world_.size());
  const Problem p = reference_problem(context_, c);
  const Tensor q = scatter_shard(p.q, layout, rank);
  const Tensor k = scatter_shard(p.k, layout, rank);
  const Tensor v = scatter_shard(p.v, layout, rank);
  const Tensor out = Tensor::empty(q.shape(), DType::f32);
  const Tensor lse = Tensor::empty({q.size(0), q.size(1), q.size(2)}, DType::f32);
  DistributedAttentionConfig config;
  config.causal = true;
  config.kernel = AttentionKernel::softmax;
  distributed_attention_forward(context_, world_, layout, config, q, k, v, out, lse);
  EXPECT_LE(shard_relative_error(out, p.out, layout, rank), kTolerance);
  EXPECT_LE(shard_relative_error(lse, p.lse, layout, rank, kLsePadding), kTolerance);
}

TEST_F(RingAttentionTest, RejectsShardsThatDoNotMatchTheLayout) {
  const SequenceLayout layout(LayoutKind::zigzag, 100, world_.size());
  const Tensor q = Tensor::zeros({1, 2, layout.shard_length() + 1, 8}, DType::f32);
  const Tensor lse = Tensor::zeros({1, 2, layout.shard_length() + 1}, DType::f32);
  try {
    distributed_attention_forward(context_, world_, layout, {}, q, q, q, q, lse);
    ADD_FAILURE() << "no UserError";
  } catch (const UserError& error) {
    EXPECT_NE(std::string(error.what()).find("[distributed_attention] q holds"), std::string::npos)
        << error.what();
  }
}

}  // namespace
}  // namespace longseq
