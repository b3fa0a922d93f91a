// The NCCL backend (parallel/nccl_communicator.h).
#include <nccl.h>

#include <atomic>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "parallel/communicator_support.h"
#include "parallel/cuda/nccl_check.h"
#include "parallel/nccl_communicator.h"
#include "runtime/cuda/handles.h"
#include "runtime/cuda/resources.h"

namespace longseq {

namespace {

ncclDataType_t nccl_datatype(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return ncclFloat32;
    case DType::f64:
      return ncclFloat64;
    case DType::i32:
      return ncclInt32;
    case DType::u8:
      return ncclUint8;
    case DType::bf16:
      return ncclBfloat16;
    case DType::f16:
      return ncclFloat16;
  }
  throw Error(LONGSEQ_FORMAT("[nccl] no NCCL datatype for {}", dtype_name(dtype)));
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum:
      return ncclSum;
    case ReduceOp::max:
      return ncclMax;
    case ReduceOp::min:
      return ncclMin;
  }
  throw Error("[nccl] unknown reduction");
}

char* element_address(const Tensor& tensor, std::int64_t offset) {
  return static_cast<char*>(tensor.raw_data()) +
         static_cast<std::size_t>(offset) * dtype_size(tensor.dtype());
}

// Rank r's output is the reduction of the inputs of ranks 0..r-1, in rank order (so the result
// does not depend on timing), starting from the identity of the operation.
template <typename T>
__global__ void exclusive_prefix(const T* gathered, T* output, std::int64_t count, int rank,
                                 ReduceOp op, T identity) {
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (i >= count) {
    return;
  }
  T accumulated = identity;
  for (int r = 0; r < rank; ++r) {
    const T value = gathered[r * count + i];
    if (op == ReduceOp::sum) {
      accumulated += value;
    } else if (op == ReduceOp::max) {
      accumulated = accumulated < value ? value : accumulated;
    } else {
      accumulated = value < accumulated ? value : accumulated;
    }
  }
  output[i] = accumulated;
}

template <typename T>
void launch_exclusive_prefix(const Tensor& gathered, const Tensor& output, int rank, ReduceOp op,
                             cudaStream_t stream) {
  const T identity =
      op == ReduceOp::sum ? T(0)
      : op == ReduceOp::max
          ? (std::numeric_limits<T>::has_infinity ? -std::numeric_limits<T>::infinity()
                                                  : std::numeric_limits<T>::lowest())
          : (std::numeric_limits<T>::has_infinity ? std::numeric_limits<T>::infinity()
                                                  : std::numeric_limits<T>::max());
  const std::int64_t count = output.numel();
  constexpr int threads = 256;
  const auto blocks = static_cast<unsigned>((count + threads - 1) / threads);
  exclusive_prefix<T><<<blocks, threads, 0, stream>>>(static_cast<const T*>(gathered.raw_data()),
                                                      static_cast<T*>(output.raw_data()), count,
                                                      rank, op, identity);
  CUDA_CHECK_LAUNCH();
}

// Owns an ncclComm_t: destroyed normally, or aborted (which also frees it) when an operation hung.
class NcclComm {
 public:
  NcclComm(int size, const ncclUniqueId& id, int rank) {
    NCCL_CHECK(ncclCommInitRank(&comm_, size, id, rank));
  }
  ~NcclComm() {
    if (comm_ != nullptr) {
      ncclCommDestroy(comm_);  // nothing can be reported from a destructor
    }
  }
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;

  [[nodiscard]] ncclComm_t get() const { return comm_; }
  void abort() noexcept {
    if (comm_ != nullptr) {
      ncclCommAbort(comm_);
      comm_ = nullptr;
    }
  }

 private:
  ncclComm_t comm_ = nullptr;
};

// One queued isend/irecv, shared between its Request and the communicator's launch queue.
struct PointToPointState {
  bool send = false;
  void* data = nullptr;
  std::size_t count = 0;
  ncclDataType_t type = ncclFloat32;
  int peer = 0;
  std::string description;
  bool launched = false;
  bool cancelled = false;  // the Request went away before launch: never launch it
  bool complete = false;
  std::shared_ptr<CudaEvent> done;  // recorded after the group that launched it
};

class NcclCommunicator;

class NcclRequest final : public Request {
 public:
  NcclRequest(NcclCommunicator& owner, std::shared_ptr<PointToPointState> state)
      : owner_(owner), state_(std::move(state)) {}
  ~NcclRequest() override {
    if (!state_->launched) {
      state_->cancelled = true;
    }
  }
  NcclRequest(const NcclRequest&) = delete;
  NcclRequest& operator=(const NcclRequest&) = delete;

  bool test() override;
  void wait() override;

 private:
  NcclCommunicator& owner_;
  std::shared_ptr<PointToPointState> state_;
};

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(MpiCommunicator& bootstrap, ComputeContext& context, const ncclUniqueId& id)
      : name_(bootstrap.name()),
        rank_(bootstrap.rank()),
        size_(bootstrap.size()),
        timeout_(bootstrap.timeout()),
        compute_stream_(context.cuda().stream()),
        comm_(bootstrap.size(), id, bootstrap.rank()),
        barrier_word_(Tensor::zeros({1}, DType::i32, Device::cuda)) {}

  [[nodiscard]] int rank() const override { return rank_; }
  [[nodiscard]] int size() const override { return size_; }
  [[nodiscard]] Device device() const override { return Device::cuda; }
  [[nodiscard]] std::string backend() const override { return "nccl"; }
  [[nodiscard]] std::chrono::milliseconds timeout() const override { return timeout_; }
  [[nodiscard]] std::int64_t bytes_sent() const override { return bytes_sent_.load(); }

  std::unique_ptr<Request> isend(const Tensor& buffer, int peer, int tag) override {
    return queue_point_to_point(true, buffer, peer, tag);
  }
  std::unique_ptr<Request> irecv(const Tensor& buffer, int peer, int tag) override {
    return queue_point_to_point(false, buffer, peer, tag);
  }

  void all_reduce(const Tensor& buffer, ReduceOp op) override {
    check_buffer("all_reduce", buffer, Device::cuda);
    check_reducible("all_reduce", buffer.dtype());
    begin("all_reduce");
    NCCL_CHECK(ncclAllReduce(
        buffer.raw_data(), buffer.raw_data(), static_cast<std::size_t>(buffer.numel()),
        nccl_datatype(buffer.dtype()), nccl_op(op), comm_.get(), stream_.get()));
    bytes_sent_ += all_reduce_volume(static_cast<std::int64_t>(buffer.bytes()), size_);
    finish("all_reduce", LONGSEQ_FORMAT("{} of {}", reduce_op_name(op), buffer.describe()));
  }

  void all_gather(const Tensor& input, const Tensor& output) override {
    check_buffer("all_gather", input, Device::cuda);
    check_buffer("all_gather", output, Device::cuda);
    LONGSEQ_CHECK(input.dtype() == output.dtype() && output.numel() == size_ * input.numel(),
                  "[all_gather] output {} must hold {} copies of input {}", output.describe(),
                  size_, input.describe());
    begin("all_gather");
    gather(input, output);
    bytes_sent_ += all_gather_volume(static_cast<std::int64_t>(input.bytes()), size_);
    finish("all_gather", LONGSEQ_FORMAT("input {}", input.describe()));
  }

  void all_to_all_v(const Tensor& input, std::span<const std::int64_t> send_counts,
                    const Tensor& output, std::span<const std::int64_t> recv_counts) override {
    const char* op = "all_to_all_v";
    check_buffer(op, input, Device::cuda);
    check_buffer(op, output, Device::cuda);
    LONGSEQ_CHECK(input.dtype() == output.dtype(), "[{}] input {} and output {} differ in type", op,
                  input.describe(), output.describe());
    const std::int64_t send_total = check_counts(op, send_counts, size_, "send");
    const std::int64_t recv_total = check_counts(op, recv_counts, size_, "receive");
    LONGSEQ_CHECK(send_total == input.numel() && recv_total == output.numel(),
                  "[{}] counts add up to {} sent and {} received; input {} and output {}", op,
                  send_total, recv_total, input.describe(), output.describe());
    begin(op);
    const ncclDataType_t type = nccl_datatype(input.dtype());
    std::int64_t send_at = 0;
    std::int64_t receive_at = 0;
    std::int64_t volume = 0;
    NCCL_CHECK(ncclGroupStart());
    for (int r = 0; r < size_; ++r) {
      const std::int64_t sends = send_counts[static_cast<std::size_t>(r)];
      const std::int64_t receives = recv_counts[static_cast<std::size_t>(r)];
      if (sends > 0) {
        NCCL_CHECK(ncclSend(element_address(input, send_at), static_cast<std::size_t>(sends), type,
                            r, comm_.get(), stream_.get()));
      }
      if (receives > 0) {
        NCCL_CHECK(ncclRecv(element_address(output, receive_at), static_cast<std::size_t>(receives),
                            type, r, comm_.get(), stream_.get()));
      }
      send_at += sends;
      receive_at += receives;
      volume += r == rank_ ? 0 : sends;
    }
    NCCL_CHECK(ncclGroupEnd());
    bytes_sent_ += volume * static_cast<std::int64_t>(dtype_size(input.dtype()));
    finish(op, LONGSEQ_FORMAT("sending {} and receiving {} {} elements", send_total, recv_total,
                              dtype_name(input.dtype())));
  }

  // All-gather of the inputs, then each rank reduces the ones before it on the device.
  void exclusive_scan(const Tensor& input, const Tensor& output, ReduceOp op) override {
    check_buffer("exclusive_scan", input, Device::cuda);
    check_buffer("exclusive_scan", output, Device::cuda);
    check_reducible("exclusive_scan", input.dtype());
    LONGSEQ_CHECK(input.dtype() == output.dtype() && input.numel() == output.numel(),
                  "[exclusive_scan] output {} must match input {}", output.describe(),
                  input.describe());
    const Tensor gathered = Tensor::empty({size_ * input.numel()}, input.dtype(), Device::cuda);
    begin("exclusive_scan");
    gather(input, gathered);
    if (input.numel() > 0) {
      switch (input.dtype()) {
        case DType::f32:
          launch_exclusive_prefix<float>(gathered, output, rank_, op, stream_.get());
          break;
        case DType::f64:
          launch_exclusive_prefix<double>(gathered, output, rank_, op, stream_.get());
          break;
        default:
          launch_exclusive_prefix<std::int32_t>(gathered, output, rank_, op, stream_.get());
          break;
      }
    }
    bytes_sent_ += exclusive_scan_volume(static_cast<std::int64_t>(input.bytes()), rank_, size_);
    finish("exclusive_scan", LONGSEQ_FORMAT("{} of {}", reduce_op_name(op), input.describe()));
  }

  void broadcast(const Tensor& buffer, int root) override {
    check_buffer("broadcast", buffer, Device::cuda);
    check_peer("broadcast", root, size_);
    begin("broadcast");
    NCCL_CHECK(ncclBroadcast(buffer.raw_data(), buffer.raw_data(),
                             static_cast<std::size_t>(buffer.numel()),
                             nccl_datatype(buffer.dtype()), root, comm_.get(), stream_.get()));
    bytes_sent_ += broadcast_volume(static_cast<std::int64_t>(buffer.bytes()), rank_, root, size_);
    finish("broadcast", LONGSEQ_FORMAT("{} from root {}", buffer.describe(), root));
  }

  // NCCL has no barrier: an all-reduce of one word that every rank must join.
  void barrier() override {
    begin("barrier");
    NCCL_CHECK(ncclAllReduce(barrier_word_.raw_data(), barrier_word_.raw_data(), 1, ncclInt32,
                             ncclSum, comm_.get(), stream_.get()));
    finish("barrier", "a barrier");
  }

  bool test_point_to_point(PointToPointState& state) {
    if (state.complete) {
      return true;
    }
    check_usable(state.send ? "isend" : "irecv");
    if (!state.launched) {
      launch_pending();
    }
    state.complete = arrived(*state.done, state.send ? "isend" : "irecv");
    return state.complete;
  }

  void wait_point_to_point(PointToPointState& state) {
    const char* op = state.send ? "isend" : "irecv";
    const Deadline deadline(timeout_);
    if (!poll_until(deadline, [&] { return test_point_to_point(state); })) {
      give_up(op);
      throw Error(timeout_message(op, deadline, state.description));
    }
  }

 private:
  std::unique_ptr<Request> queue_point_to_point(bool send, const Tensor& buffer, int peer,
                                                int tag) {
    const char* op = send ? "isend" : "irecv";
    check_usable(op);
    check_buffer(op, buffer, Device::cuda);
    check_peer(op, peer, size_);
    auto state = std::make_shared<PointToPointState>();
    state->send = send;
    state->data = buffer.raw_data();
    state->count = static_cast<std::size_t>(buffer.numel());
    state->type = nccl_datatype(buffer.dtype());
    state->peer = peer;
    // NCCL has no tags: messages between two ranks match in the order they were posted.
    state->description = LONGSEQ_FORMAT(
        "peer {} of NCCL group '{}' from rank {} (tag {}, {} bytes); did the peer post the "
        "matching {}?",
        peer, name_, rank_, tag, buffer.bytes(), send ? "irecv" : "isend");
    if (send) {
      bytes_sent_ += static_cast<std::int64_t>(buffer.bytes());
    }
    pending_.push_back(state);
    return std::make_unique<NcclRequest>(*this, std::move(state));
  }

  void check_usable(const char* op) const {
    LONGSEQ_CHECK(failed_.empty(),
                  "[{}] NCCL communicator '{}' was aborted after {} failed; make a new one", op,
                  name_, failed_);
  }

  // The communication stream waits for everything queued so far on the compute stream.
  void order_after_compute() {
    compute_ready_.record(compute_stream_);
    CUDA_CHECK(cudaStreamWaitEvent(stream_.get(), compute_ready_.get(), 0));
  }

  void launch_pending() {
    std::vector<std::shared_ptr<PointToPointState>> batch;
    batch.swap(pending_);
    std::erase_if(batch, [](const auto& state) { return state->cancelled; });
    if (batch.empty()) {
      return;
    }
    order_after_compute();
    NCCL_CHECK(ncclGroupStart());
    for (const auto& state : batch) {
      if (state->send) {
        NCCL_CHECK(ncclSend(state->data, state->count, state->type, state->peer, comm_.get(),
                            stream_.get()));
      } else {
        NCCL_CHECK(ncclRecv(state->data, state->count, state->type, state->peer, comm_.get(),
                            stream_.get()));
      }
    }
    NCCL_CHECK(ncclGroupEnd());
    auto done = std::make_shared<CudaEvent>();
    done->record(stream_.get());
    for (const auto& state : batch) {
      state->launched = true;
      state->done = done;
    }
  }

  void begin(const char* op) {
    check_usable(op);
    launch_pending();  // queued point-to-point operations go first, in the order they were posted
    order_after_compute();
  }

  void finish(const char* op, const std::string& detail) {
    finished_.record(stream_.get());
    const Deadline deadline(timeout_);
    if (!poll_until(deadline, [&] { return arrived(finished_, op); })) {
      give_up(op);
      throw Error(timeout_message(
          op, deadline,
          LONGSEQ_FORMAT("the {} ranks of NCCL group '{}' (this is rank {}; {}); a rank that "
                         "never joins this collective, or joins a different one, hangs it",
                         size_, name_, rank_, detail)));
    }
  }

  // Whether the work before `event` is done; throws on an asynchronous NCCL or CUDA error.
  bool arrived(const CudaEvent& event, const char* op) {
    const cudaError_t status = cudaEventQuery(event.get());
    if (status == cudaSuccess) {
      return true;
    }
    if (status != cudaErrorNotReady) {
      give_up(op);
      CUDA_CHECK(status);
    }
    ncclResult_t async = ncclSuccess;
    NCCL_CHECK(ncclCommGetAsyncError(comm_.get(), &async));
    if (async != ncclSuccess && async != ncclInProgress) {
      give_up(op);
      throw Error(LONGSEQ_FORMAT("[{}] NCCL group '{}' failed on rank {}: {}", op, name_, rank_,
                                 describe_nccl_status(async)));
    }
    return false;
  }

  // Shared by all_gather and exclusive_scan: queues the NCCL all-gather on the stream.
  void gather(const Tensor& input, const Tensor& output) {
    NCCL_CHECK(ncclAllGather(input.raw_data(), output.raw_data(),
                             static_cast<std::size_t>(input.numel()), nccl_datatype(input.dtype()),
                             comm_.get(), stream_.get()));
  }

  void give_up(const char* op) {
    failed_ = op;
    comm_.abort();
  }

  std::string name_;
  int rank_;
  int size_;
  std::chrono::milliseconds timeout_;
  cudaStream_t compute_stream_;
  CudaStream stream_;  // communication
  CudaEvent compute_ready_;
  CudaEvent finished_;
  NcclComm comm_;  // after the stream: destroyed before it
  Tensor barrier_word_;
  std::vector<std::shared_ptr<PointToPointState>> pending_;
  std::atomic<std::int64_t> bytes_sent_{0};
  std::string failed_;  // the operation after which the communicator was aborted
};

bool NcclRequest::test() { return owner_.test_point_to_point(*state_); }
void NcclRequest::wait() { owner_.wait_point_to_point(*state_); }

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(MpiCommunicator& bootstrap,
                                                     ComputeContext& context) {
  ncclUniqueId id{};
  const Tensor id_bytes = Tensor::zeros({static_cast<std::int64_t>(sizeof id)}, DType::u8);
  if (bootstrap.rank() == 0) {
    NCCL_CHECK(ncclGetUniqueId(&id));
    std::memcpy(id_bytes.raw_data(), &id, sizeof id);
  }
  bootstrap.broadcast(id_bytes, 0);
  std::memcpy(&id, id_bytes.raw_data(), sizeof id);
  return std::make_unique<NcclCommunicator>(bootstrap, context, id);
}

}  // namespace longseq
