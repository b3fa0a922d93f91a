// The NCCL backend in a build without CUDA: it says so.
#include "parallel/nccl_communicator.h"

namespace longseq {

std::unique_ptr<Communicator> make_nccl_communicator(MpiCommunicator&, ComputeContext&) {
  throw UserError(
      "[nccl_communicator] longseq was not built with CUDA/NCCL; use the MPI communicator and "
      "--device cpu");
}

}  // namespace longseq
