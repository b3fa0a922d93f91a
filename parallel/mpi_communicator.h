// The MPI backend of Communicator (parallel/communicator.h): host buffers, one MPI communicator of
// its own per object (duplicated or split, never MPI_COMM_WORLD itself, so that no other code's
// messages can match ours).
//
// Every wait is a loop of MPI_Test against the deadline timeout(): a peer that never arrives turns
// into an Error naming the operation, the peer (group rank and world rank) or the group, and the
// elapsed time. A timed-out point-to-point request is cancelled when its Request is destroyed, and
// the communicator stays usable; a timed-out collective cannot be withdrawn, so the communicator
// refuses every later operation (and, if the collective is still pending when it is destroyed, is
// left to MPI rather than freed under it).
//
// Element types: fp32, fp64, i32, u8 travel as themselves; bf16 and fp16 as raw 2-byte words
// (transfers only). Reductions and scans accept fp32, fp64 and i32. MPI counts are ints: larger
// buffers are rejected with a clear error.
#pragma once

#include <mpi.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "parallel/communicator.h"
#include "parallel/communicator_support.h"
#include "parallel/mpi_session.h"

namespace longseq {

class MpiCommunicator final : public Communicator {
 public:
  // Duplicates `comm` (collective over it). `name` labels the group in errors: "world", "data",
  // "sequence".
  MpiCommunicator(MPI_Comm comm, std::string name,
                  std::chrono::milliseconds timeout = kDefaultCommunicationTimeout);
  // All ranks of the job, with the timeout from LONGSEQ_COMM_TIMEOUT_S (default 300 s).
  static std::unique_ptr<MpiCommunicator> world(const MpiSession& session);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  // Collective over this communicator (MPI_Comm_split): ranks with equal color (>= 0) form one new
  // group, ranked by key and then by their rank here; the new group keeps this timeout.
  [[nodiscard]] std::unique_ptr<MpiCommunicator> split(int color, int key, std::string name) const;

  [[nodiscard]] MPI_Comm handle() const { return comm_; }
  [[nodiscard]] const std::string& name() const { return name_; }
  // The MPI_COMM_WORLD rank of each rank of this group.
  [[nodiscard]] int world_rank_of(int rank) const { return world_ranks_.at(rank); }

  [[nodiscard]] int rank() const override { return rank_; }
  [[nodiscard]] int size() const override { return size_; }
  [[nodiscard]] Device device() const override { return Device::cpu; }
  [[nodiscard]] std::string backend() const override { return "mpi"; }
  [[nodiscard]] std::chrono::milliseconds timeout() const override { return timeout_; }

  std::unique_ptr<Request> isend(const Tensor& buffer, int peer, int tag) override;
  std::unique_ptr<Request> irecv(const Tensor& buffer, int peer, int tag) override;
  void all_reduce(const Tensor& buffer, ReduceOp op) override;
  void all_gather(const Tensor& input, const Tensor& output) override;
  void all_to_all_v(const Tensor& input, std::span<const std::int64_t> send_counts,
                    const Tensor& output, std::span<const std::int64_t> recv_counts) override;
  void exclusive_scan(const Tensor& input, const Tensor& output, ReduceOp op) override;
  void broadcast(const Tensor& buffer, int root) override;
  void barrier() override;

  [[nodiscard]] std::int64_t bytes_sent() const override { return bytes_sent_.load(); }

 private:
  struct Adopt {};
  // Takes ownership of `owned` (already a communicator of its own).
  MpiCommunicator(Adopt, MPI_Comm owned, std::string name, std::chrono::milliseconds timeout);

  std::unique_ptr<Request> post_point_to_point(bool send, const Tensor& buffer, int peer, int tag);
  // Throws when an earlier collective timed out.
  void check_usable(std::string_view op) const;
  // Waits for a collective's request; `detail` describes the call for the timeout error.
  void complete_collective(MPI_Request& request, std::string_view op, const std::string& detail);

  MPI_Comm comm_ = MPI_COMM_NULL;
  std::string name_;
  std::chrono::milliseconds timeout_;
  int rank_ = 0;
  int size_ = 1;
  int max_tag_ = 32767;  // the least MPI guarantees; replaced by MPI_TAG_UB
  std::vector<int> world_ranks_;
  std::atomic<std::int64_t> bytes_sent_{0};
  std::string failed_collective_;  // non-empty after a collective timed out
  // The request of that collective: MPI may still progress it, so neither it nor the communicator
  // under it may be freed until it completes.
  MPI_Request abandoned_ = MPI_REQUEST_NULL;
};

}  // namespace longseq
