// The block computation of the ring and all-gather strategies, without a communicator: this rank's
// queries attending every rank's K/V block in turn, cut into pieces much shorter than the runs,
// equal single-call flash attention over the whole sequence (forward and gradients), for every
// layout, causal or not, with padding.
#include "parallel/block_attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "kernels/random.h"

namespace longseq {
namespace {

struct BlockCase {
  LayoutKind layout;
  bool causal;
  int ranks;
};

std::string case_name(const testing::TestParamInfo<BlockCase>& info) {
  return std::string(layout_name(info.param.layout)) + (info.param.causal ? "_causal" : "_full") +
         "_P" + std::to_string(info.param.ranks);
}

std::vector<BlockCase> block_cases() {
  std::vector<BlockCase> cases;
  for (const LayoutKind layout :
       {LayoutKind::contiguous, LayoutKind::zigzag, LayoutKind::striped}) {
    for (const bool causal : {true, false}) {
      for (const int ranks : {1, 3, 4}) {
        cases.push_back({layout, causal, ranks});
      }
    }
  }
  return cases;
}

double relative_error(const Tensor& actual, const Tensor& expected) {
  double error = 0.0;
  double scale = 0.0;
  for (std::int64_t i = 0; i < actual.numel(); ++i) {
    error = std::max(
        error, std::abs(static_cast<double>(actual.data<float>()[i]) - expected.data<float>()[i]));
    scale = std::max(scale, std::abs(static_cast<double>(expected.data<float>()[i])));
  }
  return error / scale;
}

void PrintTo(const BlockCase& c, std::ostream* os) {
  *os << layout_name(c.layout) << (c.causal ? " causal" : " full") << " P=" << c.ranks;
}

class BlockAttentionTest : public testing::TestWithParam<BlockCase> {};

TEST_P(BlockAttentionTest, PiecesOverAllBlocksEqualOneFlashCall) {
  constexpr std::int64_t kLength = 103;
  constexpr std::int64_t kHeadDim = 16;
  constexpr std::int64_t kQueryChunk = 5;
  ComputeContext context(1);
  const BlockCase& c = GetParam();
  const SequenceLayout layout(c.layout, kLength, c.ranks);
  Tensor full[4];  // q, k, v, dO as (1, 1, N, D)
  for (int i = 0; i < 4; ++i) {
    full[i] = Tensor::empty({1, 1, kLength, kHeadDim}, DType::f32);
    fill_normal(context, full[i], {7, static_cast<std::uint64_t>(i)}, 0.0f, 1.0f);
  }
  AttentionOptions options;
  options.causal = c.causal;
  const Tensor out = Tensor::empty(full[0].shape(), DType::f32);
  const Tensor lse = Tensor::empty({1, 1, kLength}, DType::f32);
  Tensor grads[3];
  for (Tensor& grad : grads) {
    grad = Tensor::empty(full[0].shape(), DType::f32);
  }
  flash_attention_forward(context, full[0], full[1], full[2], options, out, lse);
  flash_attention_backward(context, full[0], full[1], full[2], out, lse, full[3], options, grads[0],
                           grads[1], grads[2]);

  DistributedAttentionConfig config;
  config.causal = c.causal;
  const std::int64_t shard = layout.shard_length();
  std::int64_t skipped = 0;
  for (int rank = 0; rank < c.ranks; ++rank) {
    int pieces_between = 0;
    BlockAttention block(context, layout, rank, config, kHeadDim, kQueryChunk,
                         [&pieces_between] { ++pieces_between; });
    const auto rows = [&](const Tensor& tensor, int owner) {
      return head_slice(scatter_shard(tensor, layout, owner), 0, 0);  // (S, D)
    };
    const Tensor q = rows(full[0], rank);
    const Tensor grad_out = rows(full[3], rank);
    const Tensor block_out = Tensor::zeros({shard, kHeadDim}, DType::f32);
    const Tensor block_lse = Tensor::empty({shard}, DType::f32);
    std::fill_n(block_lse.data<float>(), shard, -std::numeric_limits<float>::infinity());
    for (int owner = 0; owner < c.ranks; ++owner) {
      block.forward(q, rows(full[1], owner), rows(full[2], owner), owner, block_out, block_lse);
    }
    EXPECT_LE(relative_error(block_out, rows(out, rank)), 1e-5) << "out of rank " << rank;
    const Tensor grad_q = Tensor::zeros({shard, kHeadDim}, DType::f32);
    for (int owner = 0; owner < c.ranks; ++owner) {
      const Tensor grad_k = Tensor::zeros({shard, kHeadDim}, DType::f32);
      const Tensor grad_v = Tensor::zeros({shard, kHeadDim}, DType::f32);
      // The merged out and lse, as the ring passes them.
      block.backward(q, rows(full[1], owner), rows(full[2], owner), owner, block_out, block_lse,
                     grad_out, grad_q, grad_k, grad_v);
      // On one rank its queries are all queries: dK and dV are complete.
      if (c.ranks == 1) {
        EXPECT_LE(relative_error(grad_k, rows(grads[1], owner)), 1e-5);
        EXPECT_LE(relative_error(grad_v, rows(grads[2], owner)), 1e-5);
      }
    }
    EXPECT_LE(relative_error(grad_q, rows(grads[0], rank)), 1e-5) << "dq of rank " << rank;
    // between_pieces ran after every kernel call, forward and backward.
    EXPECT_EQ(pieces_between, block.pieces_computed());
    EXPECT_GT(block.pieces_computed(), 2 * c.ranks);
    skipped += block.pieces_skipped();
  }
  // Contiguous and zig-zag blocks after a query run's own are fully masked; a striped block always
  // holds keys before some of the rank's queries.
  if (c.causal && c.ranks > 1 && c.layout != LayoutKind::striped) {
    EXPECT_GT(skipped, 0);
  } else if (!c.causal) {
    EXPECT_EQ(skipped, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Layouts, BlockAttentionTest, testing::ValuesIn(block_cases()), case_name);

}  // namespace
}  // namespace longseq
