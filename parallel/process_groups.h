// The communicators of a RankGrid: this rank's data-parallel and sequence-parallel groups, split
// from a world communicator. Passed explicitly to whatever needs them; nothing is global.
#pragma once

#include <memory>
#include <string_view>

#include "parallel/communicator.h"
#include "parallel/mpi_communicator.h"
#include "parallel/rank_grid.h"

namespace longseq {

struct ProcessGroups {
  std::unique_ptr<Communicator> data;      // ranks that hold the same sequence shard
  std::unique_ptr<Communicator> sequence;  // ranks that share one sequence
};

// Collective over `world`: this rank's group along `dimension` (ranked by its coordinate there),
// named after the dimension. UserError when the grid does not cover world's ranks.
std::unique_ptr<MpiCommunicator> split_along(const MpiCommunicator& world, const RankGrid& grid,
                                             std::string_view dimension);

// Collective over `world`: the groups along the grid's "data" and "sequence" dimensions.
ProcessGroups split_process_groups(const MpiCommunicator& world, const RankGrid& grid);

}  // namespace longseq
