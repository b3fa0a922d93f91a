// The NCCL backend of Communicator (parallel/communicator.h): CUDA device buffers, bootstrapped
// over an MPI communicator (rank 0 creates the unique id and broadcasts it), one NCCL communicator
// per object with the same ranks, name and timeout as the MPI one.
//
// Streams: operations run on a communication stream of their own that first waits for all work
// queued so far on the ComputeContext's stream (so inputs are ready), and every operation returns
// only once its data has arrived (polling against the deadline), so later work on the compute
// stream sees the results; compute queued meanwhile overlaps with point-to-point transfers.
//
// Point to point: NCCL matches sends and receives only when they are launched together, so isend
// and irecv are queued and launched as one group (ncclGroupStart/End) at the first test() or
// wait() of any of them, or before the next collective. Post all the sends and receives of one
// exchange step, then call test() once to start them. NCCL cannot withdraw a launched transfer:
// destroying its Request early leaves it running (the buffer must outlive it); an unlaunched one
// is dropped.
//
// Timeouts: a wait that passes the deadline, or an asynchronous NCCL error, aborts the NCCL
// communicator (ncclCommAbort) and throws; the object refuses every later operation.
//
// The device is the current CUDA device when the communicator is made (the one the ComputeContext
// uses). In a build without CUDA (parallel/no_nccl.cpp) the factory throws.
#pragma once

#include <memory>

#include "parallel/communicator.h"
#include "parallel/mpi_communicator.h"
#include "runtime/context.h"

namespace longseq {

// Collective over `bootstrap`. `context` must outlive the communicator.
std::unique_ptr<Communicator> make_nccl_communicator(MpiCommunicator& bootstrap,
                                                     ComputeContext& context);

}  // namespace longseq
