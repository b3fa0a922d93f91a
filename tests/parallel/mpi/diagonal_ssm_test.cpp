// The distributed diagonal state-space layer on every rank count (run under mpirun -np 1..4): for
// every kind x strategy x layout x sequence length (dividing evenly or not), every rank's shard of
// y and grad_u, and the all-reduced parameter gradients, equal the single-rank layer over the
// whole sequence within 1e-5 relative; padding positions are exactly zero. Every rank draws the
// same full inputs (Philox) and computes the reference itself.
#include "kernels/diagonal_ssm.h"

#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "kernels/random.h"
#include "parallel/diagonal_ssm_parallel.h"
#include "parallel/mpi_communicator.h"

namespace longseq {
namespace {

using namespace std::chrono_literals;

constexpr double kTolerance = 1e-5;
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

Tensor normal(ComputeContext& context, const Shape& shape, std::uint64_t stream) {
  const Tensor tensor = Tensor::empty(shape, DType::f32);
  fill_normal(context, tensor, {2025, stream}, 0.0f, 1.0f);
  return tensor;
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

// max |actual - expected| / max |expected| over this rank's valid positions; padding must be 0.
double shard_relative_error(const Tensor& actual, const Tensor& full, const SequenceLayout& layout,
                            int rank) {
  const Tensor expected = scatter_shard(full, layout, rank);
  const std::int64_t outer = actual.size(0) * actual.size(1);
  const std::int64_t shard = layout.shard_length();
  const float* a = actual.data<float>();
  const float* e = expected.data<float>();
  double max_error = 0.0;
  double max_reference = 0.0;
  for (std::int64_t o = 0; o < outer; ++o) {
    for (std::int64_t local = 0; local < shard; ++local) {
      const std::int64_t at = o * shard + local;
      if (layout.global_position(rank, local) >= layout.global_length()) {
        EXPECT_EQ(a[at], 0.0f) << "padding holds " << a[at];
        continue;
      }
      max_error = std::max(max_error, std::abs(static_cast<double>(a[at]) - e[at]));
      max_reference = std::max(max_reference, std::abs(static_cast<double>(e[at])));
    }
  }
  return max_reference > 0.0 ? max_error / max_reference : max_error;
}

double relative_error(const Tensor& actual, const Tensor& expected) {
  double max_error = 0.0;
  double max_reference = 0.0;
  for (std::int64_t e = 0; e < actual.numel(); ++e) {
    const double x = expected.data<float>()[e];
    max_error = std::max(max_error, std::abs(actual.data<float>()[e] - x));
    max_reference = std::max(max_reference, std::abs(x));
  }
  return max_reference > 0.0 ? max_error / max_reference : max_error;
}

class DistributedDiagonalSsmTest : public testing::TestWithParam<SsmCase> {
 protected:
  ComputeContext context_{1};
  MpiCommunicator world_{MPI_COMM_WORLD, "world", 60s};
};

TEST_P(DistributedDiagonalSsmTest, ShardsAndParameterGradientsEqualSingleRank) {
  const SsmCase& c = GetParam();
  const DiagonalSsmParameters parameters = parameters_for(c.kind);
  const Shape shape{kBatch, kChannels, c.length};
  const Tensor u = normal(context_, shape, 1);
  const Tensor grad_y = normal(context_, shape, 2);
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
