// Distributed linear attention on every rank count (run under mpirun -np 1..4): for every
// strategy x layout x causal x sequence length (dividing evenly or not), the outputs and gradients
// of every rank's shard equal single-rank linear attention over the whole sequence within 1e-5
// relative. Every rank draws the same full inputs (Philox) and computes the reference itself.
#include "kernels/linear_attention.h"

#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "parallel/linear_attention_parallel.h"
#include "parallel/mpi_communicator.h"
#include "tests/parallel/mpi/multi_rank_test.h"
#include "tests/parallel/mpi/shard_comparison.h"

namespace longseq {
namespace {

constexpr double kTolerance = 1e-5;
constexpr std::uint64_t kSeed = 2025;  // of the inputs' random streams
constexpr std::int64_t kBatch = 2;
constexpr std::int64_t kHeads = 2;
constexpr std::int64_t kKeyDim = 16;
constexpr std::int64_t kValueDim = 24;

struct LinearCase {
  StateScanStrategy strategy;
  LayoutKind layout;
  bool causal;
  std::int64_t length;
};

std::string case_name(const testing::TestParamInfo<LinearCase>& info) {
  const LinearCase& c = info.param;
  return std::string(state_scan_name(c.strategy)) + "_" + std::string(layout_name(c.layout)) +
         (c.causal ? "_causal" : "_full") + "_N" + std::to_string(c.length);
}

void PrintTo(const LinearCase& c, std::ostream* os) {
  *os << state_scan_name(c.strategy) << " " << layout_name(c.layout)
      << (c.causal ? " causal" : " full") << " N=" << c.length;
}

std::vector<LinearCase> linear_cases() {
  std::vector<LinearCase> cases;
  for (const StateScanStrategy strategy :
       {StateScanStrategy::chain, StateScanStrategy::all_gather}) {
    for (const LayoutKind layout :
         {LayoutKind::contiguous, LayoutKind::zigzag, LayoutKind::striped}) {
      for (const bool causal : {true, false}) {
        for (const std::int64_t length : {256, 193}) {
          cases.push_back({strategy, layout, causal, length});
        }
      }
    }
  }
  return cases;
}

using DistributedLinearAttentionTest = MultiRankTest<LinearCase>;

TEST_P(DistributedLinearAttentionTest, ShardsEqualSingleRank) {
  const LinearCase& c = GetParam();
  const Shape key_shape{kBatch, kHeads, c.length, kKeyDim};
  const Shape value_shape{kBatch, kHeads, c.length, kValueDim};
  const Tensor q = normal(context_, key_shape, kSeed, 1);
  const Tensor k = normal(context_, key_shape, kSeed, 2);
  const Tensor v = normal(context_, value_shape, kSeed, 3);
  const Tensor grad_out = normal(context_, value_shape, kSeed, 4);
  LinearAttentionOptions options;
  options.causal = c.causal;
  const Tensor out = Tensor::empty(value_shape, DType::f32);
  linear_attention_forward(context_, q, k, v, options, {}, out, {});
  const Tensor grad_q = Tensor::empty(key_shape, DType::f32);
  const Tensor grad_k = Tensor::empty(key_shape, DType::f32);
  const Tensor grad_v = Tensor::empty(value_shape, DType::f32);
  linear_attention_backward(context_, q, k, v, grad_out, options, {}, {}, grad_q, grad_k, grad_v,
                            {});

  const int rank = world_.rank();
  const SequenceLayout layout(c.layout, c.length, world_.size());
  const Tensor shard_q = scatter_shard(q, layout, rank);
  const Tensor shard_k = scatter_shard(k, layout, rank);
  const Tensor shard_v = scatter_shard(v, layout, rank);
  const Tensor shard_grad_out = scatter_shard(grad_out, layout, rank);
  LinearAttentionParallelConfig config;
  config.strategy = c.strategy;
  config.causal = c.causal;
  const Tensor shard_out = Tensor::empty(shard_v.shape(), DType::f32);
  distributed_linear_attention_forward(context_, world_, layout, config, shard_q, shard_k, shard_v,
                                       Tensor(), shard_out);
  EXPECT_LE(shard_relative_error(shard_out, out, layout, rank), kTolerance) << "out";
  const Tensor shard_grad_q = Tensor::empty(shard_q.shape(), DType::f32);
  const Tensor shard_grad_k = Tensor::empty(shard_k.shape(), DType::f32);
  const Tensor shard_grad_v = Tensor::empty(shard_v.shape(), DType::f32);
  distributed_linear_attention_backward(context_, world_, layout, config, shard_q, shard_k, shard_v,
                                        Tensor(), shard_grad_out, shard_grad_q, shard_grad_k,
                                        shard_grad_v);
  EXPECT_LE(shard_relative_error(shard_grad_q, grad_q, layout, rank), kTolerance) << "grad_q";
  EXPECT_LE(shard_relative_error(shard_grad_k, grad_k, layout, rank), kTolerance) << "grad_k";
  EXPECT_LE(shard_relative_error(shard_grad_v, grad_v, layout, rank), kTolerance) << "grad_v";
}

INSTANTIATE_TEST_SUITE_P(Linear, DistributedLinearAttentionTest, testing::ValuesIn(linear_cases()),
                         case_name);

}  // namespace
}  // namespace longseq
