// Distributed S4 on every rank count (run under mpirun -np 1..4): for every strategy x layout x
// sequence length (dividing evenly or not), every rank's shard of y and grad_u, and the
// all-reduced parameter gradients, equal single-rank S4 over the whole sequence within 1e-4
// relative; padding positions are exactly zero. Every rank builds the same full inputs.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "parallel/mpi_communicator.h"
#include "parallel/s4_parallel.h"
#include "tests/parallel/mpi/multi_rank_test.h"

namespace longseq {
namespace {

constexpr double kTolerance = 1e-4;

struct S4Case {
  StateScanStrategy strategy;
  LayoutKind layout;
  std::int64_t length;
};

std::string case_name(const testing::TestParamInfo<S4Case>& info) {
  return std::string(state_scan_name(info.param.strategy)) + "_" +
         std::string(layout_name(info.param.layout)) + "_N" + std::to_string(info.param.length);
}

// Deterministic full inputs (B, H, N).
Tensor full_input(std::int64_t length, double phase) {
  const Tensor t = Tensor::empty({2, 3, length}, DType::f32);
  for (std::int64_t e = 0; e < t.numel(); ++e) {
    t.data<float>()[e] = static_cast<float>(std::sin(0.37 * static_cast<double>(e) + phase));
  }
  return t;
}

Tensor shard_of(const Tensor& full, const SequenceLayout& layout, int rank) {
  const std::int64_t shard = layout.shard_length();
  const std::int64_t rows = full.size(0) * full.size(1);
  const Tensor out = Tensor::zeros({full.size(0), full.size(1), shard}, DType::f32);
  for (std::int64_t local = 0; local < shard; ++local) {
    const std::int64_t global = layout.global_position(rank, local);
    if (global < layout.global_length()) {
      for (std::int64_t r = 0; r < rows; ++r) {
        out.data<float>()[r * shard + local] = full.data<float>()[r * full.size(2) + global];
      }
    }
  }
  return out;
}

double relative_error(const Tensor& actual, const Tensor& expected) {
  double error = 0.0;
  double scale = 0.0;
  for (std::int64_t e = 0; e < expected.numel(); ++e) {
    error = std::max(
        error, std::abs(static_cast<double>(actual.data<float>()[e]) - expected.data<float>()[e]));
    scale = std::max(scale, std::abs(static_cast<double>(expected.data<float>()[e])));
  }
  return error / std::max(scale, 1e-30);
}

class DistributedS4Test : public MultiRankTest<S4Case> {
 protected:
  std::unique_ptr<MpiCommunicator> self_ = world_.split(world_.rank(), 0, "self");
};

TEST_P(DistributedS4Test, ShardsAndParameterGradientsEqualSingleRank) {
  const S4Case c = GetParam();
  const int rank = world_.rank();
  const S4Parameters parameters = make_s4_parameters(3, 8, 21);
  const Tensor u = full_input(c.length, 0.0);
  const Tensor grad_y = full_input(c.length, 1.0);
  S4ParallelConfig config;
  config.strategy = c.strategy;

  const SequenceLayout whole(LayoutKind::contiguous, c.length, 1);
  const Tensor y = Tensor::empty(u.shape(), DType::f32);
  const Tensor grad_u = Tensor::empty(u.shape(), DType::f32);
  const S4Parameters grads = zeros_like(parameters);
  distributed_s4_forward(context_, *self_, whole, config, parameters, u, y);
  distributed_s4_backward(context_, *self_, whole, config, parameters, u, grad_y, grad_u, grads);

  const SequenceLayout layout(c.layout, c.length, world_.size());
  const Tensor shard_y = Tensor::empty(shard_of(u, layout, rank).shape(), DType::f32);
  const Tensor shard_grad_u = Tensor::empty(shard_y.shape(), DType::f32);
  const S4Parameters shard_grads = zeros_like(parameters);
  distributed_s4_forward(context_, world_, layout, config, parameters, shard_of(u, layout, rank),
                         shard_y);
  distributed_s4_backward(context_, world_, layout, config, parameters, shard_of(u, layout, rank),
                          shard_of(grad_y, layout, rank), shard_grad_u, shard_grads);
  EXPECT_LE(relative_error(shard_y, shard_of(y, layout, rank)), kTolerance) << "y";
  EXPECT_LE(relative_error(shard_grad_u, shard_of(grad_u, layout, rank)), kTolerance) << "grad_u";
  const std::vector<std::string> names{"log_dt", "lambda", "p", "b", "c", "d"};
  for (std::size_t i = 0; i < names.size(); ++i) {
    EXPECT_LE(relative_error(shard_grads.list()[i], grads.list()[i]), kTolerance) << names[i];
  }
}

std::vector<S4Case> s4_cases() {
  std::vector<S4Case> cases;
  for (const StateScanStrategy strategy :
       {StateScanStrategy::chain, StateScanStrategy::all_gather}) {
    for (const LayoutKind layout :
         {LayoutKind::contiguous, LayoutKind::zigzag, LayoutKind::striped}) {
      for (const std::int64_t length : {64, 61}) {
        cases.push_back({strategy, layout, length});
      }
    }
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Cases, DistributedS4Test, testing::ValuesIn(s4_cases()), case_name);

}  // namespace
}  // namespace longseq
