// The parallel layout of a job as a value: named dimensions (e.g. data x sequence) laid over the
// world ranks in a chosen order. Everything here is a pure function of the grid and a rank, so it
// is unit-tested without MPI; parallel/process_groups.h turns it into communicators.
//
// Order: the dimension listed first in `order` varies fastest over consecutive world ranks. With
// dims {{"data", 2}, {"sequence", 4}} and order {"sequence", "data"} (the default for this list:
// the last dimension varies fastest), world ranks 0..3 form one sequence group, so a ring of
// sequence shards stays within a node when nodes hold consecutive ranks.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace longseq {

struct GridDimension {
  std::string name;
  int size = 1;
};

// The arguments of MPI_Comm_split that put a rank into its group along one dimension.
struct SplitKey {
  int color = 0;  // the same for all members of a group, different between groups, >= 0
  int key = 0;    // the rank within the group: the coordinate along the dimension
};

class RankGrid {
 public:
  // UserError for empty or repeated names, sizes < 1, or an order that is not a permutation of the
  // dimension names. An empty order means the last dimension varies fastest.
  explicit RankGrid(std::vector<GridDimension> dims, std::vector<std::string> order = {});

  // {"data", world_size / sequence_size} x {"sequence", sequence_size}, sequence fastest;
  // UserError unless sequence_size divides world_size.
  static RankGrid data_by_sequence(int world_size, int sequence_size);

  // Number of ranks the grid covers: the product of the dimension sizes.
  [[nodiscard]] int size() const { return size_; }
  [[nodiscard]] const std::vector<GridDimension>& dimensions() const { return dims_; }
  // Index into dimensions() of `name`; UserError naming the known dimensions otherwise.
  [[nodiscard]] int dimension_index(std::string_view name) const;
  [[nodiscard]] int dimension_size(std::string_view name) const;
  // "data 2 x sequence 4 (sequence fastest)".
  [[nodiscard]] std::string describe() const;

  // UserError unless the grid covers exactly `world_size` ranks.
  void require_world_size(int world_size) const;

  // Coordinates of a world rank, one per dimension in dimensions() order.
  [[nodiscard]] std::vector<int> coordinates(int rank) const;
  [[nodiscard]] int coordinate(int rank, std::string_view dimension) const;
  // Inverse of coordinates().
  [[nodiscard]] int rank_at(std::span<const int> coordinates) const;
  // World ranks of the group of `rank` along `dimension` (all other coordinates equal), ordered by
  // their coordinate along it: element i has coordinate i.
  [[nodiscard]] std::vector<int> group(int rank, std::string_view dimension) const;
  [[nodiscard]] SplitKey split_key(int rank, std::string_view dimension) const;

 private:
  void check_rank(int rank) const;

  std::vector<GridDimension> dims_;
  std::vector<int> strides_;  // world-rank stride of each dimension, dimensions() order
  int size_ = 1;
};

}  // namespace longseq
