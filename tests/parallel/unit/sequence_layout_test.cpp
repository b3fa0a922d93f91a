// Sequence layouts: the position mapping round-trips, runs describe exactly the rank's positions
// with their padding as a suffix, zig-zag chunk ownership, and scatter/gather round-trips.
#include "parallel/sequence_layout.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "runtime/error.h"

namespace longseq {
namespace {

struct LayoutCase {
  LayoutKind kind;
  std::int64_t length;
  int ranks;
};

std::string case_name(const testing::TestParamInfo<LayoutCase>& info) {
  return std::string(layout_name(info.param.kind)) + "_N" + std::to_string(info.param.length) +
         "_P" + std::to_string(info.param.ranks);
}

std::vector<LayoutCase> layout_cases() {
  std::vector<LayoutCase> cases;
  for (const LayoutKind kind : {LayoutKind::contiguous, LayoutKind::zigzag, LayoutKind::striped}) {
    for (const std::int64_t length : {1, 5, 16, 97, 120}) {
      for (int ranks = 1; ranks <= 5; ++ranks) {
        cases.push_back({kind, length, ranks});
      }
    }
  }
  return cases;
}

class LayoutTest : public testing::TestWithParam<LayoutCase> {
 protected:
  SequenceLayout layout_{GetParam().kind, GetParam().length, GetParam().ranks};
};

TEST_P(LayoutTest, ShardsCoverThePaddedSequenceOnce) {
  const std::int64_t shard = layout_.shard_length();
  EXPECT_GE(layout_.padded_length(), layout_.global_length());
  EXPECT_LT(layout_.padded_length() - layout_.global_length(),
            layout_.kind() == LayoutKind::zigzag ? 2 * layout_.ranks() : layout_.ranks());
  std::set<std::int64_t> seen;
  std::int64_t valid = 0;
  for (int rank = 0; rank < layout_.ranks(); ++rank) {
    for (std::int64_t local = 0; local < shard; ++local) {
      const std::int64_t global = layout_.global_position(rank, local);
      ASSERT_GE(global, 0);
      ASSERT_LT(global, layout_.padded_length());
      EXPECT_TRUE(seen.insert(global).second) << "position " << global << " held twice";
      EXPECT_EQ(layout_.owner(global), std::make_pair(rank, local));
    }
    valid += layout_.valid_length(rank);
  }
  EXPECT_EQ(static_cast<std::int64_t>(seen.size()), layout_.padded_length());
  EXPECT_EQ(valid, layout_.global_length());
}

TEST_P(LayoutTest, RunsDescribeTheRankAndPadIntoASuffix) {
  const std::vector<LayoutRun>::size_type expected_runs =
      layout_.kind() == LayoutKind::zigzag ? 2 : 1;
  for (int rank = 0; rank < layout_.ranks(); ++rank) {
    const std::vector<LayoutRun> runs = layout_.runs(rank);
    ASSERT_EQ(runs.size(), expected_runs);
    std::int64_t next_local = 0;
    for (const LayoutRun& run : runs) {
      EXPECT_EQ(run.local_begin, next_local);
      next_local += run.length;
      EXPECT_EQ(run.stride, layout_.kind() == LayoutKind::striped ? layout_.ranks() : 1);
      ASSERT_LE(run.valid_length, run.length);
      for (std::int64_t i = 0; i < run.length; ++i) {
        const std::int64_t global = layout_.global_position(rank, run.local_begin + i);
        EXPECT_EQ(global, run.global_begin + i * run.stride);
        EXPECT_EQ(global < layout_.global_length(), i < run.valid_length)
            << "rank " << rank << " local " << run.local_begin + i;
      }
    }
    EXPECT_EQ(next_local, layout_.shard_length());
  }
}

TEST_P(LayoutTest, ScatterThenGatherRoundTrips) {
  const std::int64_t length = layout_.global_length();
  std::vector<float> values(static_cast<std::size_t>(2 * length * 3));
  for (std::size_t i = 0; i < values.size(); ++i) {
    values[i] = static_cast<float>(i) + 1.0f;
  }
  const Tensor full = Tensor::from_vector(values, {2, length, 3});  // (B, N, D)
  std::vector<Tensor> shards;
  for (int rank = 0; rank < layout_.ranks(); ++rank) {
    shards.push_back(scatter_shard(full, layout_, rank, 1));
    ASSERT_EQ(shards.back().shape(), (Shape{2, layout_.shard_length(), 3}));
    const float* shard = shards.back().data<float>();
    for (std::int64_t b = 0; b < 2; ++b) {
      for (std::int64_t local = 0; local < layout_.shard_length(); ++local) {
        const std::int64_t global = layout_.global_position(rank, local);
        const float expected = global < length ? values[(b * length + global) * 3] : 0.0f;
        EXPECT_EQ(shard[(b * layout_.shard_length() + local) * 3], expected);
      }
    }
  }
  const Tensor gathered = gather_shards(shards, layout_, 1);
  ASSERT_EQ(gathered.shape(), full.shape());
  for (std::size_t i = 0; i < values.size(); ++i) {
    ASSERT_EQ(gathered.data<float>()[i], values[i]) << "element " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Layouts, LayoutTest, testing::ValuesIn(layout_cases()), case_name);

TEST(SequenceLayout, ZigzagRankHoldsChunksRAndMirror) {
  const SequenceLayout layout(LayoutKind::zigzag, 97, 4);  // chunks of 13, padded to 104
  EXPECT_EQ(layout.shard_length(), 26);
  for (int rank = 0; rank < 4; ++rank) {
    const std::vector<LayoutRun> runs = layout.runs(rank);
    EXPECT_EQ(runs[0].global_begin, rank * 13);
    EXPECT_EQ(runs[1].global_begin, (7 - rank) * 13);
  }
  EXPECT_EQ(layout.runs(0)[1].valid_length, 6);  // chunk 7: positions 91..96
  EXPECT_EQ(layout.runs(1)[1].valid_length, 13);
  EXPECT_EQ(layout.valid_length(0), 19);
}

TEST(SequenceLayout, ContiguousPadsOnlyTheLastRanks) {
  const SequenceLayout layout(LayoutKind::contiguous, 97, 4);  // shards of 25
  EXPECT_EQ(layout.valid_length(0), 25);
  EXPECT_EQ(layout.valid_length(3), 22);
  const SequenceLayout short_sequence(LayoutKind::contiguous, 5, 4);  // shards of 2
  EXPECT_EQ(short_sequence.valid_length(2), 1);
  EXPECT_EQ(short_sequence.valid_length(3), 0);
}

TEST(SequenceLayout, ScatterAlongTheHeadTensorSequenceDimension) {
  const SequenceLayout layout(LayoutKind::striped, 7, 3);
  std::vector<float> values(2 * 7);
  for (std::size_t i = 0; i < values.size(); ++i) {
    values[i] = static_cast<float>(i);
  }
  const Tensor full = Tensor::from_vector(values, {1, 2, 7});  // (B, H, N)
  const Tensor shard = scatter_shard(full, layout, 1);         // positions 1, 4, 7 (padding)
  ASSERT_EQ(shard.shape(), (Shape{1, 2, 3}));
  const std::vector<float> expected{1, 4, 0, 8, 11, 0};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(shard.data<float>()[i], expected[i]);
  }
}

TEST(SequenceLayout, NamesAndBadArguments) {
  for (const LayoutKind kind : {LayoutKind::contiguous, LayoutKind::zigzag, LayoutKind::striped}) {
    EXPECT_EQ(parse_layout(layout_name(kind)), kind);
  }
  EXPECT_THROW((void)parse_layout("diagonal"), UserError);
  EXPECT_THROW(SequenceLayout(LayoutKind::contiguous, 0, 2), UserError);
  EXPECT_THROW(SequenceLayout(LayoutKind::zigzag, 10, 0), UserError);
}

}  // namespace
}  // namespace longseq
