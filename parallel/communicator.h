// Communicators: point-to-point and collective exchange among the ranks of one group.
//
// Two backends implement this interface: MPI on host buffers (parallel/mpi_communicator.h) and
// NCCL on CUDA device buffers (parallel/nccl_communicator.h, bootstrapped over MPI). Buffers are
// contiguous tensors on the backend's device(); element counts and types come from the tensors.
//
// Every operation that waits does so with a deadline (timeout()): a hang becomes an Error naming
// the operation and the peer (or the group for collectives), never a silent stall.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "runtime/device.h"
#include "runtime/tensor.h"

namespace longseq {

enum class ReduceOp : std::uint8_t { sum, max, min };

// A pending non-blocking send or receive. Completion is driven explicitly: test() advances the
// backend's progress engine once and says whether the operation is done, so a compute loop can
// call it between blocks of work; wait() blocks until done or the deadline passes.
class Request {
 public:
  virtual ~Request() = default;
  virtual bool test() = 0;
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  [[nodiscard]] virtual int rank() const = 0;
  [[nodiscard]] virtual int size() const = 0;
  // Where buffers must live: cpu for MPI, cuda for NCCL.
  [[nodiscard]] virtual Device device() const = 0;
  // "mpi" or "nccl".
  [[nodiscard]] virtual std::string backend() const = 0;
  [[nodiscard]] virtual std::chrono::milliseconds timeout() const = 0;

  // Non-blocking point to point; the buffer must stay alive and untouched until completion.
  virtual std::unique_ptr<Request> isend(const Tensor& buffer, int peer, int tag) = 0;
  virtual std::unique_ptr<Request> irecv(const Tensor& buffer, int peer, int tag) = 0;

  // In place over all ranks of the group.
  virtual void all_reduce(const Tensor& buffer, ReduceOp op) = 0;
  // output holds size() copies of input's shape, rank-major: output[r] = input of rank r.
  virtual void all_gather(const Tensor& input, const Tensor& output) = 0;
  // input holds send_counts[r] elements for rank r, back to back in rank order; output receives
  // recv_counts[r] elements from rank r, back to back in rank order. Counts in elements.
  virtual void all_to_all_v(const Tensor& input, std::span<const std::int64_t> send_counts,
                            const Tensor& output, std::span<const std::int64_t> recv_counts) = 0;
  // output on rank r = op over the inputs of ranks 0..r-1; rank 0 gets the identity of op
  // (0 for sum, -inf for max, +inf for min).
  virtual void exclusive_scan(const Tensor& input, const Tensor& output, ReduceOp op) = 0;
  virtual void broadcast(const Tensor& buffer, int root) = 0;
  virtual void barrier() = 0;

  // Bytes this rank has sent so far (point to point and its share of collectives), for the
  // communication volume that benchmarks report.
  [[nodiscard]] virtual std::int64_t bytes_sent() const = 0;
};

}  // namespace longseq
