// The distributed diagonal state-space layer on every rank count (run under mpirun -np 1..4): for
// every kind x strategy x layout x sequence length (dividing evenly or not), every rank's shard of
// y and grad_u, and the all-reduced parameter gradients, equal the single-rank layer over the
// whole sequence within 1e-5 relative; padding positions are exactly zero. Every rank draws the
// same full inputs (Philox) and computes the reference itself.
#include "kernels/diagonal_ssm.h"

#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "parallel/diagonal_ssm_parallel.h"
#include "parallel/mpi_communicator.h"
#include "tests/parallel/mpi/multi_rank_test.h"
#include "tests/parallel/mpi/shard_comparison.h"

namespace longseq {
namespace {

constexpr double kTolerance = 1e-5;
constexpr std::uint64_t kSeed = 2025;  // of the inputs' random streams
constexpr std::int64_t kBatch = 2;
constexpr std::int64_t kChannels = 3;
constexpr std::int64_t kStateSize = 8;

struct SsmCase {
  DiagonalSsmKind kind;
  StateScanStrategy strategy;
  LayoutKind layout;
  std::int64_t length;
};

const char* kind_name(DiagonalSsmKind kind) { return kind == DiagonalSsmKind::s4d ? "s4d" : "dss"; }

std::string case_name(const testing::TestParamInfo<SsmCase>& info) {
  const SsmCase& c = info.param;
  return std::string(kind_name(c.kind)) + "_" + std::string(state_scan_name(c.strategy)) + "_" +
         std::string(layout_name(c.layout)) + "_N" + std::to_string(c.length);
}

void PrintTo(const SsmCase& c, std::ostream* os) {
  *os << kind_name(c.kind) << " " << state_scan_name(c.strategy) << " " << layout_name(c.layout)
      << " N=" << c.length;
}

std::vector<SsmCase> ssm_cases() {
  std::vector<SsmCase> cases;
  for (const DiagonalSsmKind kind : {DiagonalSsmKind::s4d, DiagonalSsmKind::dss}) {
    for (const StateScanStrategy strategy :
         {StateScanStrategy::chain, StateScanStrategy::all_gather}) {
      for (const LayoutKind layout :
           {LayoutKind::contiguous, LayoutKind::zigzag, LayoutKind::striped}) {
        for (const std::int64_t length : {240, 193}) {
          cases.push_back({kind, strategy, layout, length});
        }
      }
    }
  }
  return cases;
}

// The paper initialisation with a larger dt, so that states carry visibly across shards.
DiagonalSsmParameters parameters_for(DiagonalSsmKind kind) {
  DiagonalSsmParameters p = kind == DiagonalSsmKind::s4d
                                ? make_s4d_parameters(kChannels, kStateSize, 7)
                                : make_dss_parameters(kChannels, kStateSize, 7, 0.05);
  if (kind == DiagonalSsmKind::s4d) {
    for (std::int64_t h = 0; h < kChannels; ++h) {
      p.log_dt.data<float>()[h] = std::log(0.02f * static_cast<float>(h + 1));
    }
  }
  return p;
}

using DistributedDiagonalSsmTest = MultiRankTest<SsmCase>;

TEST_P(DistributedDiagonalSsmTest, ShardsAndParameterGradientsEqualSingleRank) {
  const SsmCase& c = GetParam();
  const DiagonalSsmParameters parameters = parameters_for(c.kind);
  const Shape shape{kBatch, kChannels, c.length};
  const Tensor u = normal(context_, shape, kSeed, 1);
  const Tensor grad_y = normal(context_, shape, kSeed, 2);
  const Tensor y = Tensor::empty(shape, DType::f32);
  diagonal_ssm_forward(context_, c.kind, parameters, u, Tensor(), y, Tensor());
  const Tensor grad_u = Tensor::empty(shape, DType::f32);
  const DiagonalSsmParameters grads = zeros_like(parameters);
  diagonal_ssm_backward(context_, c.kind, parameters, u, grad_y, Tensor(), Tensor(), grad_u, grads,
                        Tensor());

  const int rank = world_.rank();
  const SequenceLayout layout(c.layout, c.length, world_.size());
  const Tensor shard_u = scatter_shard(u, layout, rank);
  const Tensor shard_grad_y = scatter_shard(grad_y, layout, rank);
  DiagonalSsmParallelConfig config;
  config.kind = c.kind;
  config.strategy = c.strategy;
  const Tensor shard_y = Tensor::empty(shard_u.shape(), DType::f32);
  distributed_diagonal_ssm_forward(context_, world_, layout, config, parameters, shard_u, shard_y);
  EXPECT_LE(shard_relative_error(shard_y, y, layout, rank), kTolerance) << "y";
  const Tensor shard_grad_u = Tensor::empty(shard_u.shape(), DType::f32);
  const DiagonalSsmParameters shard_grads = zeros_like(parameters);
  distributed_diagonal_ssm_backward(context_, world_, layout, config, parameters, shard_u,
                                    shard_grad_y, shard_grad_u, shard_grads);
  EXPECT_LE(shard_relative_error(shard_grad_u, grad_u, layout, rank), kTolerance) << "grad_u";
  EXPECT_LE(relative_error(shard_grads.log_dt, grads.log_dt), kTolerance) << "grad log_dt";
  EXPECT_LE(relative_error(shard_grads.lambda, grads.lambda), kTolerance) << "grad lambda";
  EXPECT_LE(relative_error(shard_grads.b, grads.b), kTolerance) << "grad b";
  EXPECT_LE(relative_error(shard_grads.c, grads.c), kTolerance) << "grad c";
  EXPECT_LE(relative_error(shard_grads.d, grads.d), kTolerance) << "grad d";
}

INSTANTIATE_TEST_SUITE_P(DiagonalSsm, DistributedDiagonalSsmTest, testing::ValuesIn(ssm_cases()),
                         case_name);

}  // namespace
}  // namespace longseq
