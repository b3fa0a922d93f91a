// The fixture of the parameterised multi-rank tests: a one-thread compute context and the world
// communicator (every rank of the mpirun job), with a timeout that turns a hang into a failure.
#pragma once

#include <gtest/gtest.h>
#include <mpi.h>

#include <chrono>

#include "parallel/mpi_communicator.h"
#include "runtime/context.h"

namespace longseq {

template <typename Case>
class MultiRankTest : public testing::TestWithParam<Case> {
 protected:
  ComputeContext context_{1};
  MpiCommunicator world_{MPI_COMM_WORLD, "world", std::chrono::seconds(60)};
};

}  // namespace longseq
