#include "parallel/process_groups.h"

#include <string>

namespace longseq {

std::unique_ptr<MpiCommunicator> split_along(const MpiCommunicator& world, const RankGrid& grid,
                                             std::string_view dimension) {
  grid.require_world_size(world.size());
  const SplitKey split = grid.split_key(world.rank(), dimension);
  return world.split(split.color, split.key, std::string(dimension));
}

ProcessGroups split_process_groups(const MpiCommunicator& world, const RankGrid& grid) {
  // Check both names before the first collective split, so that a bad grid fails on every rank
  // alike instead of leaving the others inside MPI_Comm_split.
  static_cast<void>(grid.dimension_index("data"));
  static_cast<void>(grid.dimension_index("sequence"));
  grid.require_world_size(world.size());
  ProcessGroups groups;
  groups.data = split_along(world, grid, "data");
  groups.sequence = split_along(world, grid, "sequence");
  return groups;
}

}  // namespace longseq
