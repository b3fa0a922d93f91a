#include "parallel/mpi_communicator.h"

#include <climits>
#include <cstring>
#include <limits>
#include <utility>

#include "parallel/mpi_check.h"

namespace longseq {

namespace {

MPI_Datatype mpi_datatype(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return MPI_FLOAT;
    case DType::f64:
      return MPI_DOUBLE;
    case DType::i32:
      return MPI_INT32_T;
    case DType::u8:
      return MPI_UINT8_T;
    case DType::bf16:
    case DType::f16:
      return MPI_UINT16_T;  // moved, never reduced
  }
  throw Error(fmt::format("[mpi] no MPI datatype for {}", dtype_name(dtype)));
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum:
      return MPI_SUM;
    case ReduceOp::max:
      return MPI_MAX;
    case ReduceOp::min:
      return MPI_MIN;
  }
  throw Error("[mpi] unknown reduction");
}

int mpi_count(std::string_view op, std::int64_t count) {
  LONGSEQ_CHECK(count <= INT_MAX,
                "[{}] {} elements exceed MPI's int count limit ({}); split the buffer", op, count,
                INT_MAX);
  return static_cast<int>(count);
}

template <typename T>
void fill(const Tensor& tensor, T value) {
  T* data = static_cast<T*>(tensor.raw_data());
  for (std::int64_t i = 0; i < tensor.numel(); ++i) {
    data[i] = value;
  }
}

// The identity of `op` (0, -inf, +inf; the extreme values for integers), what rank 0 receives.
void fill_identity(const Tensor& tensor, ReduceOp op) {
  const bool is_max = op == ReduceOp::max;
  switch (tensor.dtype()) {
    case DType::f32:
      fill<float>(tensor, op == ReduceOp::sum ? 0.0f
                          : is_max            ? -std::numeric_limits<float>::infinity()
                                              : std::numeric_limits<float>::infinity());
      return;
    case DType::f64:
      fill<double>(tensor, op == ReduceOp::sum ? 0.0
                           : is_max            ? -std::numeric_limits<double>::infinity()
                                               : std::numeric_limits<double>::infinity());
      return;
    case DType::i32:
      fill<std::int32_t>(tensor, op == ReduceOp::sum ? 0
                                 : is_max            ? std::numeric_limits<std::int32_t>::min()
                                                     : std::numeric_limits<std::int32_t>::max());
      return;
    default:
      throw Error(fmt::format("[exclusive_scan] no identity for {}", dtype_name(tensor.dtype())));
  }
}

MPI_Comm duplicate(MPI_Comm comm, std::chrono::milliseconds timeout) {
  check_timeout(timeout);
  MPI_Comm copy = MPI_COMM_NULL;
  MPI_CHECK(MPI_Comm_dup(comm, &copy));
  return copy;
}

bool mpi_finalized() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  return finalized != 0;
}

// A pending MPI_Isend / MPI_Irecv. An incomplete request is withdrawn on destruction: a receive is
// cancelled and its cancellation awaited (local, cannot hang), so that a later message cannot
// land in a buffer that is gone; a send is cancelled and released (MPI may still deliver it).
class MpiRequest final : public Request {
 public:
  MpiRequest(MPI_Request request, bool send, std::string description,
             std::chrono::milliseconds timeout)
      : request_(request), send_(send), description_(std::move(description)), timeout_(timeout) {}

  ~MpiRequest() override {
    if (request_ == MPI_REQUEST_NULL || mpi_finalized()) {
      return;
    }
    MPI_Cancel(&request_);
    if (send_) {
      MPI_Request_free(&request_);
    } else {
      MPI_Wait(&request_, MPI_STATUS_IGNORE);
    }
  }
  MpiRequest(const MpiRequest&) = delete;
  MpiRequest& operator=(const MpiRequest&) = delete;

  bool test() override {
    if (request_ == MPI_REQUEST_NULL) {
      return true;
    }
    int done = 0;
    MPI_CHECK(MPI_Test(&request_, &done, MPI_STATUS_IGNORE));
    return done != 0;
  }

  void wait() override {
    const Deadline deadline(timeout_);
    if (!poll_until(deadline, [this] { return test(); })) {
      throw Error(timeout_message(send_ ? "isend" : "irecv", deadline, description_));
    }
  }

 private:
  MPI_Request request_;
  bool send_;
  std::string description_;
  std::chrono::milliseconds timeout_;
};

}  // namespace

MpiCommunicator::MpiCommunicator(MPI_Comm comm, std::string name, std::chrono::milliseconds timeout)
    : MpiCommunicator(Adopt{}, duplicate(comm, timeout), std::move(name), timeout) {}

MpiCommunicator::MpiCommunicator(Adopt, MPI_Comm owned, std::string name,
                                 std::chrono::milliseconds timeout)
    : comm_(owned), name_(std::move(name)), timeout_(timeout) {
  try {
    check_timeout(timeout);
    // Failures come back as statuses for MPI_CHECK instead of aborting the job.
    MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
    MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
    MPI_CHECK(MPI_Comm_size(comm_, &size_));
    int* tag_upper_bound = nullptr;
    int found = 0;
    MPI_CHECK(MPI_Comm_get_attr(comm_, MPI_TAG_UB, &tag_upper_bound, &found));
    if (found != 0 && tag_upper_bound != nullptr) {
      max_tag_ = *tag_upper_bound;
    }
    MPI_Group group = MPI_GROUP_NULL;
    MPI_Group world_group = MPI_GROUP_NULL;
    MPI_CHECK(MPI_Comm_group(comm_, &group));
    MPI_CHECK(MPI_Comm_group(MPI_COMM_WORLD, &world_group));
    std::vector<int> ranks(static_cast<std::size_t>(size_));
    for (int r = 0; r < size_; ++r) {
      ranks[static_cast<std::size_t>(r)] = r;
    }
    world_ranks_.resize(ranks.size());
    const int translated =
        MPI_Group_translate_ranks(group, size_, ranks.data(), world_group, world_ranks_.data());
    MPI_Group_free(&group);
    MPI_Group_free(&world_group);
    MPI_CHECK(translated);
  } catch (...) {
    MPI_Comm_free(&comm_);
    throw;
  }
}

std::unique_ptr<MpiCommunicator> MpiCommunicator::world(const MpiSession&) {
  return std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, "world",
                                           communication_timeout_from_environment());
}

MpiCommunicator::~MpiCommunicator() {
  if (comm_ == MPI_COMM_NULL || mpi_finalized()) {
    return;
  }
  if (abandoned_ != MPI_REQUEST_NULL) {
    int done = 0;
    MPI_Test(&abandoned_, &done, MPI_STATUS_IGNORE);
    if (done == 0) {
      return;  // freeing the communicator under a pending collective crashes Open MPI
    }
  }
  MPI_Comm_free(&comm_);
}

std::unique_ptr<MpiCommunicator> MpiCommunicator::split(int color, int key,
                                                        std::string name) const {
  check_usable("split");
  LONGSEQ_CHECK(color >= 0, "[split] color must be non-negative, got {} (group '{}')", color, name);
  MPI_Comm part = MPI_COMM_NULL;
  MPI_CHECK(MPI_Comm_split(comm_, color, key, &part));
  return std::unique_ptr<MpiCommunicator>(
      new MpiCommunicator(Adopt{}, part, std::move(name), timeout_));
}

void MpiCommunicator::check_usable(std::string_view op) const {
  LONGSEQ_CHECK(
      failed_collective_.empty(),
      "[{}] communicator '{}' is unusable: an earlier {} timed out and cannot be withdrawn", op,
      name_, failed_collective_);
}

std::unique_ptr<Request> MpiCommunicator::isend(const Tensor& buffer, int peer, int tag) {
  return post_point_to_point(true, buffer, peer, tag);
}

std::unique_ptr<Request> MpiCommunicator::irecv(const Tensor& buffer, int peer, int tag) {
  return post_point_to_point(false, buffer, peer, tag);
}

std::unique_ptr<Request> MpiCommunicator::post_point_to_point(bool send, const Tensor& buffer,
                                                              int peer, int tag) {
  const std::string_view op = send ? "isend" : "irecv";
  check_usable(op);
  check_buffer(op, buffer, Device::cpu);
  check_peer(op, peer, size_);
  LONGSEQ_CHECK(tag >= 0 && tag <= max_tag_, "[{}] tag {} is outside 0..{}", op, tag, max_tag_);
  const int count = mpi_count(op, buffer.numel());
  MPI_Request request = MPI_REQUEST_NULL;
  if (send) {
    MPI_CHECK(MPI_Isend(buffer.raw_data(), count, mpi_datatype(buffer.dtype()), peer, tag, comm_,
                        &request));
    bytes_sent_ += static_cast<std::int64_t>(buffer.bytes());
  } else {
    MPI_CHECK(MPI_Irecv(buffer.raw_data(), count, mpi_datatype(buffer.dtype()), peer, tag, comm_,
                        &request));
  }
  std::string description = fmt::format(
      "peer {} (world rank {}) of group '{}' from rank {} (tag {}, {} bytes); did the peer post "
      "the matching {}?",
      peer, world_ranks_[static_cast<std::size_t>(peer)], name_, rank_, tag, buffer.bytes(),
      send ? "irecv" : "isend");
  return std::make_unique<MpiRequest>(request, send, std::move(description), timeout_);
}

void MpiCommunicator::complete_collective(MPI_Request& request, std::string_view op,
                                          const std::string& detail) {
  const Deadline deadline(timeout_);
  int done = 0;
  const bool completed = poll_until(deadline, [&] {
    MPI_CHECK(MPI_Test(&request, &done, MPI_STATUS_IGNORE));
    return done != 0;
  });
  if (!completed) {
    failed_collective_ = op;
    abandoned_ = std::exchange(request, MPI_REQUEST_NULL);
    throw Error(timeout_message(
        op, deadline,
        fmt::format("the {} ranks of group '{}' (this is rank {}, world rank {}; {}); a rank "
                    "that never joins this collective, or joins a different one, hangs it",
                    size_, name_, rank_, world_ranks_[static_cast<std::size_t>(rank_)], detail)));
  }
}

void MpiCommunicator::all_reduce(const Tensor& buffer, ReduceOp op) {
  check_usable("all_reduce");
  check_buffer("all_reduce", buffer, Device::cpu);
  check_reducible("all_reduce", buffer.dtype());
  const int count = mpi_count("all_reduce", buffer.numel());
  MPI_Request request = MPI_REQUEST_NULL;
  MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, buffer.raw_data(), count, mpi_datatype(buffer.dtype()),
                           mpi_op(op), comm_, &request));
  bytes_sent_ += all_reduce_volume(static_cast<std::int64_t>(buffer.bytes()), size_);
  complete_collective(request, "all_reduce",
                      fmt::format("{} {} of {}", reduce_op_name(op), count, buffer.describe()));
}

void MpiCommunicator::all_gather(const Tensor& input, const Tensor& output) {
  check_usable("all_gather");
  check_buffer("all_gather", input, Device::cpu);
  check_buffer("all_gather", output, Device::cpu);
  LONGSEQ_CHECK(input.dtype() == output.dtype() && output.numel() == size_ * input.numel(),
                "[all_gather] output {} must hold {} copies of input {}", output.describe(), size_,
                input.describe());
  const int count = mpi_count("all_gather", output.numel()) / size_;
  const MPI_Datatype type = mpi_datatype(input.dtype());
  MPI_Request request = MPI_REQUEST_NULL;
  MPI_CHECK(MPI_Iallgather(input.raw_data(), count, type, output.raw_data(), count, type, comm_,
                           &request));
  bytes_sent_ += all_gather_volume(static_cast<std::int64_t>(input.bytes()), size_);
  complete_collective(request, "all_gather", fmt::format("input {}", input.describe()));
}

void MpiCommunicator::all_to_all_v(const Tensor& input, std::span<const std::int64_t> send_counts,
                                   const Tensor& output,
                                   std::span<const std::int64_t> recv_counts) {
  constexpr std::string_view op = "all_to_all_v";
  check_usable(op);
  check_buffer(op, input, Device::cpu);
  check_buffer(op, output, Device::cpu);
  LONGSEQ_CHECK(input.dtype() == output.dtype(), "[{}] input {} and output {} differ in type", op,
                input.describe(), output.describe());
  const std::int64_t send_total = check_counts(op, send_counts, size_, "send");
  const std::int64_t recv_total = check_counts(op, recv_counts, size_, "receive");
  LONGSEQ_CHECK(send_total == input.numel(), "[{}] send counts add up to {}, input {} has {}", op,
                send_total, input.describe(), input.numel());
  LONGSEQ_CHECK(recv_total == output.numel(), "[{}] receive counts add up to {}, output {} has {}",
                op, recv_total, output.describe(), output.numel());
  mpi_count(op, send_total);  // displacements are ints too
  mpi_count(op, recv_total);
  const auto ranks = static_cast<std::size_t>(size_);
  std::vector<int> sends(ranks), send_offsets(ranks), receives(ranks), receive_offsets(ranks);
  std::int64_t volume = 0;
  for (std::size_t r = 0, send_at = 0, receive_at = 0; r < ranks; ++r) {
    sends[r] = static_cast<int>(send_counts[r]);
    receives[r] = static_cast<int>(recv_counts[r]);
    send_offsets[r] = static_cast<int>(send_at);
    receive_offsets[r] = static_cast<int>(receive_at);
    send_at += static_cast<std::size_t>(sends[r]);
    receive_at += static_cast<std::size_t>(receives[r]);
    if (static_cast<int>(r) != rank_) {
      volume += send_counts[r];
    }
  }
  const MPI_Datatype type = mpi_datatype(input.dtype());
  MPI_Request request = MPI_REQUEST_NULL;
  MPI_CHECK(MPI_Ialltoallv(input.raw_data(), sends.data(), send_offsets.data(), type,
                           output.raw_data(), receives.data(), receive_offsets.data(), type, comm_,
                           &request));
  bytes_sent_ += volume * static_cast<std::int64_t>(dtype_size(input.dtype()));
  complete_collective(request, op,
                      fmt::format("sending {} and receiving {} {} elements", send_total, recv_total,
                                  dtype_name(input.dtype())));
}

void MpiCommunicator::exclusive_scan(const Tensor& input, const Tensor& output, ReduceOp op) {
  check_usable("exclusive_scan");
  check_buffer("exclusive_scan", input, Device::cpu);
  check_buffer("exclusive_scan", output, Device::cpu);
  check_reducible("exclusive_scan", input.dtype());
  LONGSEQ_CHECK(input.dtype() == output.dtype() && input.numel() == output.numel(),
                "[exclusive_scan] output {} must match input {}", output.describe(),
                input.describe());
  const int count = mpi_count("exclusive_scan", input.numel());
  // In place when both views are the same memory: MPI forbids aliased send and receive buffers.
  const void* send = input.raw_data() == output.raw_data() ? MPI_IN_PLACE : input.raw_data();
  MPI_Request request = MPI_REQUEST_NULL;
  MPI_CHECK(MPI_Iexscan(send, output.raw_data(), count, mpi_datatype(input.dtype()), mpi_op(op),
                        comm_, &request));
  bytes_sent_ += exclusive_scan_volume(static_cast<std::int64_t>(input.bytes()), rank_, size_);
  complete_collective(request, "exclusive_scan",
                      fmt::format("{} of {}", reduce_op_name(op), input.describe()));
  // MPI leaves rank 0's output undefined; the interface promises the identity.
  if (rank_ == 0) {
    fill_identity(output, op);
  }
}

void MpiCommunicator::broadcast(const Tensor& buffer, int root) {
  check_usable("broadcast");
  check_buffer("broadcast", buffer, Device::cpu);
  check_peer("broadcast", root, size_);
  const int count = mpi_count("broadcast", buffer.numel());
  MPI_Request request = MPI_REQUEST_NULL;
  MPI_CHECK(
      MPI_Ibcast(buffer.raw_data(), count, mpi_datatype(buffer.dtype()), root, comm_, &request));
  bytes_sent_ += broadcast_volume(static_cast<std::int64_t>(buffer.bytes()), rank_, root, size_);
  complete_collective(request, "broadcast",
                      fmt::format("{} from root {}", buffer.describe(), root));
}

void MpiCommunicator::barrier() {
  check_usable("barrier");
  MPI_Request request = MPI_REQUEST_NULL;
  MPI_CHECK(MPI_Ibarrier(comm_, &request));
  complete_collective(request, "barrier", "a barrier");
}

}  // namespace longseq
