// RankGrid is pure: coordinates, groups and split keys are checked here without MPI.
#include "parallel/rank_grid.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "runtime/error.h"

namespace longseq {
namespace {

using Ranks = std::vector<int>;

// The message of the UserError `call` throws (empty when it throws nothing).
template <typename Call>
std::string user_error_of(Call&& call) {
  try {
    call();
  } catch (const UserError& error) {
    return error.what();
  }
  return {};
}

TEST(RankGrid, SequenceFastestKeepsSequenceGroupsContiguous) {
  const RankGrid grid({{"data", 2}, {"sequence", 4}});
  EXPECT_EQ(grid.size(), 8);
  EXPECT_EQ(grid.coordinates(5), (Ranks{1, 1}));
  EXPECT_EQ(grid.coordinate(6, "sequence"), 2);
  EXPECT_EQ(grid.coordinate(6, "data"), 1);
  EXPECT_EQ(grid.group(5, "sequence"), (Ranks{4, 5, 6, 7}));
  EXPECT_EQ(grid.group(5, "data"), (Ranks{1, 5}));
  EXPECT_EQ(grid.group(0, "sequence"), (Ranks{0, 1, 2, 3}));
  EXPECT_EQ(grid.describe(), "data 2 x sequence 4 (sequence fastest)");
}

TEST(RankGrid, ExplicitOrderPutsDataFastest) {
  const RankGrid grid({{"data", 2}, {"sequence", 4}}, {"data", "sequence"});
  EXPECT_EQ(grid.coordinates(5), (Ranks{1, 2}));
  EXPECT_EQ(grid.group(5, "data"), (Ranks{4, 5}));
  EXPECT_EQ(grid.group(5, "sequence"), (Ranks{1, 3, 5, 7}));
  EXPECT_EQ(grid.describe(), "data 2 x sequence 4 (data fastest)");
}

TEST(RankGrid, CoordinatesRoundTripForEveryRank) {
  const RankGrid grid({{"pipeline", 3}, {"data", 2}, {"sequence", 2}},
                      {"data", "sequence", "pipeline"});
  std::set<Ranks> seen;
  for (int rank = 0; rank < grid.size(); ++rank) {
    const Ranks at = grid.coordinates(rank);
    EXPECT_EQ(grid.rank_at(at), rank);
    seen.insert(at);
  }
  EXPECT_EQ(seen.size(), 12u);
}

// For every dimension: each rank's group contains it at its own coordinate, all members agree on
// the group, split keys are the coordinate, and colors match exactly when groups do.
TEST(RankGrid, GroupsAndSplitKeysAgree) {
  const RankGrid grid({{"data", 3}, {"sequence", 4}});
  for (const std::string dimension : {"data", "sequence"}) {
    for (int rank = 0; rank < grid.size(); ++rank) {
      const Ranks members = grid.group(rank, dimension);
      ASSERT_EQ(static_cast<int>(members.size()), grid.dimension_size(dimension));
      const SplitKey split = grid.split_key(rank, dimension);
      EXPECT_GE(split.color, 0);
      EXPECT_EQ(split.key, grid.coordinate(rank, dimension));
      EXPECT_EQ(members[static_cast<std::size_t>(split.key)], rank);
      for (int other = 0; other < grid.size(); ++other) {
        const bool same_group = grid.group(other, dimension) == members;
        EXPECT_EQ(grid.split_key(other, dimension).color == split.color, same_group)
            << dimension << " ranks " << rank << " and " << other;
      }
    }
  }
}

TEST(RankGrid, SingleRankAndDegenerateDimensions) {
  const RankGrid one = RankGrid::data_by_sequence(1, 1);
  EXPECT_EQ(one.size(), 1);
  EXPECT_EQ(one.group(0, "data"), (Ranks{0}));
  EXPECT_EQ(one.group(0, "sequence"), (Ranks{0}));

  const RankGrid sequence_only = RankGrid::data_by_sequence(4, 4);
  EXPECT_EQ(sequence_only.group(2, "sequence"), (Ranks{0, 1, 2, 3}));
  EXPECT_EQ(sequence_only.group(2, "data"), (Ranks{2}));

  const RankGrid data_only = RankGrid::data_by_sequence(3, 1);
  EXPECT_EQ(data_only.group(1, "data"), (Ranks{0, 1, 2}));
  EXPECT_EQ(data_only.group(1, "sequence"), (Ranks{1}));
}

TEST(RankGrid, InvalidGridsAreUserErrors) {
  EXPECT_NE(user_error_of([] {
              RankGrid({{"data", 0}});
            }).find("'data' has size 0"),
            std::string::npos);
  EXPECT_NE(user_error_of([] {
              RankGrid({{"data", 2}, {"data", 2}});
            }).find("appears twice"),
            std::string::npos);
  EXPECT_NE(user_error_of([] { RankGrid({}); }).find("at least one dimension"), std::string::npos);
  EXPECT_NE(user_error_of([] {
              RankGrid({{"data", 2}}, {"sequence"});
            }).find("unknown dimension 'sequence'"),
            std::string::npos);
  EXPECT_NE(user_error_of([] {
              RankGrid({{"data", 2}, {"sequence", 2}}, {"data", "data"});
            }).find("names 'data' twice"),
            std::string::npos);
  EXPECT_NE(user_error_of([] { RankGrid::data_by_sequence(6, 4); }).find("does not divide"),
            std::string::npos);

  const RankGrid grid({{"data", 2}, {"sequence", 4}});
  const std::string wrong_size = user_error_of([&] { grid.require_world_size(6); });
  EXPECT_NE(wrong_size.find("covers 8 ranks, but the job has 6"), std::string::npos) << wrong_size;
  EXPECT_NO_THROW(grid.require_world_size(8));
  const std::string unknown = user_error_of([&] { (void)grid.group(0, "tensor"); });
  EXPECT_NE(unknown.find("unknown dimension 'tensor'; the grid has data, sequence"),
            std::string::npos)
      << unknown;
  EXPECT_NE(user_error_of([&] { (void)grid.coordinates(8); }).find("rank 8 is outside"),
            std::string::npos);
}

}  // namespace
}  // namespace longseq
