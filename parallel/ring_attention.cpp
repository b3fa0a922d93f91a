#include "parallel/ring_attention.h"

#include <array>
#include <limits>
#include <memory>
#include <vector>

#include "parallel/block_attention.h"
#include "runtime/timer.h"

namespace longseq {

namespace {

// Message tags of the ring; each kind has its own so that K and dK never match each other.
constexpr int kKeyTag = 11;
constexpr int kValueTag = 12;
constexpr int kKeyGradTag = 13;
constexpr int kValueGradTag = 14;

// The pending requests of the ring and their timing: communication is in flight from the first
// post until every request is seen complete; the part of it spent blocked in wait_all() is exposed.
class RingExchange {
 public:
  explicit RingExchange(DistributedAttentionStats& stats) : stats_(stats) {}
  RingExchange(const RingExchange&) = delete;
  RingExchange& operator=(const RingExchange&) = delete;
  ~RingExchange() = default;

  void post(std::unique_ptr<Request> request) {
    if (!active_) {
      in_flight_.restart();
      active_ = true;
    }
    pending_.push_back(std::move(request));
  }

  // Advances the progress engine once per pending request, dropping the completed ones.
  void poll() {
    std::erase_if(pending_,
                  [](const std::unique_ptr<Request>& request) { return request->test(); });
    if (pending_.empty()) {
      finish();
    }
  }

  void wait_all() {
    if (pending_.empty()) {
      return;
    }
    const WallTimer blocked;
    for (const std::unique_ptr<Request>& request : pending_) {
      request->wait();
    }
    pending_.clear();
    stats_.exposed_communication_seconds += blocked.seconds();
    finish();
  }

 private:
  void finish() {
    if (active_) {
      stats_.communication_seconds += in_flight_.seconds();
    }
    active_ = false;
  }

  DistributedAttentionStats& stats_;
  std::vector<std::unique_ptr<Request>> pending_;
  WallTimer in_flight_;
  bool active_ = false;
};

// The geometry of the ring on this rank.
struct RingShape {
  int rank = 0;
  int ranks = 1;
  std::int64_t batch = 0;
  std::int64_t query_heads = 0;
  std::int64_t kv_heads = 0;
  std::int64_t shard = 0;
  std::int64_t head_dim = 0;

  RingShape(const Communicator& communicator, const Tensor& q, const Tensor& k)
      : rank(communicator.rank()),
        ranks(communicator.size()),
        batch(q.size(0)),
        query_heads(q.size(1)),
        kv_heads(k.size(1)),
        shard(q.size(2)),
        head_dim(q.size(3)) {}

  [[nodiscard]] int left() const { return (rank + ranks - 1) % ranks; }
  [[nodiscard]] int right() const { return (rank + 1) % ranks; }
  // The rank whose block this rank holds in step `step`.
  [[nodiscard]] int owner(int step) const { return (rank - step + ranks) % ranks; }
  [[nodiscard]] std::int64_t group() const { return query_heads / kv_heads; }
  // Pieces short enough to drive the exchange often; on one rank there is nothing to drive.
  [[nodiscard]] std::int64_t query_chunk() const {
    return ranks > 1 ? BlockAttention::kQueryChunk : shard;
  }
};

// Two (S, D) fp32 buffers, used alternately for what arrives while the other is in use.
struct BufferPair {
  std::array<Tensor, 2> buffers;

  BufferPair(std::int64_t rows, std::int64_t head_dim)
      : buffers{Tensor::empty({rows, head_dim}, DType::f32),
                Tensor::empty({rows, head_dim}, DType::f32)} {}
  [[nodiscard]] const Tensor& at(int step) const { return buffers[step % 2]; }
};

void add_block_stats(const BlockAttention& block, DistributedAttentionStats& stats) {
  stats.compute_seconds += block.compute_seconds();
  stats.blocks_computed += block.pieces_computed();
  stats.blocks_skipped += block.pieces_skipped();
}

}  // namespace

void ring_attention_forward(ComputeContext& context, Communicator& communicator,
                            const SequenceLayout& layout, const DistributedAttentionConfig& config,
                            const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                            const Tensor& lse, DistributedAttentionStats& stats) {
  const RingShape ring(communicator, q, k);
  RingExchange exchange(stats);
  BlockAttention block(context, layout, ring.rank, config, ring.head_dim, ring.query_chunk(),
                       [&exchange] { exchange.poll(); });
  // Only as many receive buffers as the ring needs: none on one rank.
  const std::int64_t buffer_rows = ring.ranks > 1 ? ring.shard : 0;
  const BufferPair keys(buffer_rows, ring.head_dim);
  const BufferPair values(buffer_rows, ring.head_dim);
  out.zero();
  std::fill_n(lse.data<float>(), lse.numel(), -std::numeric_limits<float>::infinity());

  for (std::int64_t b = 0; b < ring.batch; ++b) {
    for (std::int64_t kv_head = 0; kv_head < ring.kv_heads; ++kv_head) {
      Tensor k_block = head_slice(k, b, kv_head);  // (S, D), then the visiting blocks
      Tensor v_block = head_slice(v, b, kv_head);
      for (int step = 0; step < ring.ranks; ++step) {
        const bool forward_block = step + 1 < ring.ranks;
        if (forward_block) {
          exchange.post(communicator.irecv(keys.at(step), ring.left(), kKeyTag));
          exchange.post(communicator.irecv(values.at(step), ring.left(), kValueTag));
          exchange.post(communicator.isend(k_block, ring.right(), kKeyTag));
          exchange.post(communicator.isend(v_block, ring.right(), kValueTag));
        }
        for (std::int64_t head = kv_head * ring.group(); head < (kv_head + 1) * ring.group();
             ++head) {
          block.forward(head_slice(q, b, head), k_block, v_block, ring.owner(step),
                        head_slice(out, b, head), head_slice(lse, b, head));
        }
        exchange.wait_all();
        if (forward_block) {
          k_block = keys.at(step);
          v_block = values.at(step);
        }
      }
    }
  }
  add_block_stats(block, stats);
}

void ring_attention_backward(ComputeContext& context, Communicator& communicator,
                             const SequenceLayout& layout, const DistributedAttentionConfig& config,
                             const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                             const Tensor& lse, const Tensor& grad_out, const Tensor& grad_q,
                             const Tensor& grad_k, const Tensor& grad_v,
                             DistributedAttentionStats& stats) {
  const RingShape ring(communicator, q, k);
  RingExchange exchange(stats);
  BlockAttention block(context, layout, ring.rank, config, ring.head_dim, ring.query_chunk(),
                       [&exchange] { exchange.poll(); });
  const std::int64_t buffer_rows = ring.ranks > 1 ? ring.shard : 0;
  const BufferPair keys(buffer_rows, ring.head_dim);
  const BufferPair values(buffer_rows, ring.head_dim);
  // This rank's contribution to the visiting block's dK/dV, plus what arrived; sent on while the
  // next step computes into the other buffer of the pair.
  const BufferPair key_grads(ring.shard, ring.head_dim);
  const BufferPair value_grads(ring.shard, ring.head_dim);
  const Tensor arriving_key_grad = Tensor::empty({buffer_rows, ring.head_dim}, DType::f32);
  const Tensor arriving_value_grad = Tensor::empty({buffer_rows, ring.head_dim}, DType::f32);
  grad_q.zero();

  for (std::int64_t b = 0; b < ring.batch; ++b) {
    for (std::int64_t kv_head = 0; kv_head < ring.kv_heads; ++kv_head) {
      Tensor k_block = head_slice(k, b, kv_head);  // (S, D), then the visiting blocks
      Tensor v_block = head_slice(v, b, kv_head);
      const Tensor grad_k_home = head_slice(grad_k, b, kv_head);
      const Tensor grad_v_home = head_slice(grad_v, b, kv_head);
      for (int step = 0; step < ring.ranks; ++step) {
        const bool forward_block = step + 1 < ring.ranks;
        if (forward_block) {
          exchange.post(communicator.irecv(keys.at(step), ring.left(), kKeyTag));
          exchange.post(communicator.irecv(values.at(step), ring.left(), kValueTag));
          exchange.post(communicator.isend(k_block, ring.right(), kKeyTag));
          exchange.post(communicator.isend(v_block, ring.right(), kValueTag));
        }
        if (step > 0) {
          // The accumulator of this step's block, from rank r - 1's previous step.
          exchange.post(communicator.irecv(arriving_key_grad, ring.left(), kKeyGradTag));
          exchange.post(communicator.irecv(arriving_value_grad, ring.left(), kValueGradTag));
        }
        const Tensor& key_grad = key_grads.at(step);
        const Tensor& value_grad = value_grads.at(step);
        key_grad.zero();
        value_grad.zero();
        for (std::int64_t head = kv_head * ring.group(); head < (kv_head + 1) * ring.group();
             ++head) {
          block.backward(head_slice(q, b, head), k_block, v_block, ring.owner(step),
                         head_slice(out, b, head), head_slice(lse, b, head),
                         head_slice(grad_out, b, head), head_slice(grad_q, b, head), key_grad,
                         value_grad);
        }
        // Completes the block exchange, the arriving accumulator and the previous step's sends.
        exchange.wait_all();
        if (ring.ranks == 1) {
          grad_k_home.copy_from(key_grad);
          grad_v_home.copy_from(value_grad);
          continue;
        }
        if (step > 0) {
          accumulate(key_grad, arriving_key_grad);
          accumulate(value_grad, arriving_value_grad);
        }
        if (!forward_block) {
          // The accumulator of this rank's own block comes home from rank r - 1's last step.
          // Posted after this step's receive from the same peer and tag (matched in posting
          // order), and waited for only after the loop: rank r - 1 sends it after its own wait.
          exchange.post(communicator.irecv(grad_k_home, ring.left(), kKeyGradTag));
          exchange.post(communicator.irecv(grad_v_home, ring.left(), kValueGradTag));
        }
        exchange.post(communicator.isend(key_grad, ring.right(), kKeyGradTag));
        exchange.post(communicator.isend(value_grad, ring.right(), kValueGradTag));
        if (forward_block) {
          k_block = keys.at(step);
          v_block = values.at(step);
        }
      }
      exchange.wait_all();
    }
  }
  add_block_stats(block, stats);
}

}  // namespace longseq
