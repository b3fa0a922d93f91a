#include "parallel/rpe_attention_parallel.h"

#include <memory>
#include <vector>

#include "kernels/rpe_attention.h"
#include "parallel/sequence_chunks.h"
#include "parallel/shard_checks.h"
#include "parallel/stats_scope.h"
#include "runtime/timer.h"

namespace longseq {

namespace {

constexpr const char* kOp = "distributed_rpe_attention";

// Message tags of the ring, one per kind, so that k and its gradient never match each other.
constexpr int kKeyTag = 41;
constexpr int kValueTag = 42;
constexpr int kKeyGradTag = 43;
constexpr int kValueGradTag = 44;

// Requests in flight, polled between block pairs; the time blocked in wait() is exposed.
class Exchange {
 public:
  explicit Exchange(DistributedAttentionStats& stats) : stats_(stats) {}

  void post(std::unique_ptr<Request> request) { pending_.push_back(std::move(request)); }

  void poll() {
    std::erase_if(pending_,
                  [](const std::unique_ptr<Request>& request) { return request->test(); });
  }

  void wait() {
    const WallTimer blocked;
    for (const std::unique_ptr<Request>& request : pending_) {
      request->wait();
    }
    pending_.clear();
    stats_.exposed_communication_seconds += blocked.seconds();
  }

 private:
  DistributedAttentionStats& stats_;
  std::vector<std::unique_ptr<Request>> pending_;
};

// One rank's shard of k and v on its way around the ring, with the gradients it collects.
struct Visitor {
  int owner = 0;
  Tensor k, v;            // (B, H, S, Dk), (B, H, S, Dv)
  Tensor grad_k, grad_v;  // like k, v; undefined in the forward
};

struct Ring {
  ComputeContext& context;
  Communicator& communicator;
  const SequenceLayout& layout;
  const RpeAttentionParallelConfig& config;
  DistributedAttentionStats& stats;
  const Tensor& b;                   // (H, 2N - 1)
  ChunkPlan plan;                    // this rank's query chunks
  std::vector<Tensor> q;             // per chunk, (B, H, valid, Dk)
  std::vector<Tensor> numerator;     // per chunk, (B, H, valid, Dv + 1)
  std::vector<Tensor> readout_grad;  // per chunk, like numerator (backward)
  std::vector<Tensor> grad_q;        // per chunk, like q (backward)
  Tensor grad_b;                     // (H, 2N - 1), this rank's share (backward)

  [[nodiscard]] int rank() const { return communicator.rank(); }
  [[nodiscard]] int ranks() const { return communicator.size(); }
};

Ring make_ring(ComputeContext& context, Communicator& communicator, const SequenceLayout& layout,
               const RpeAttentionParallelConfig& config, DistributedAttentionStats& stats,
               const Tensor& b, const Tensor& q, std::int64_t value_dim) {
  Ring ring{context, communicator, layout, config, stats, b, ChunkPlan(layout, communicator.rank()),
            {},      {},           {},     {},     {}};
  for (const SequenceChunk& chunk : ring.plan.chunks()) {
    ring.q.push_back(chunk_rows(q, chunk.local_begin, chunk.valid));
    ring.numerator.push_back(
        Tensor::zeros({q.size(0), q.size(1), chunk.valid, value_dim + 1}, DType::f32));
  }
  return ring;
}

// Keys at or after every query of the chunk: the pair has no visible key under causality.
bool pair_skipped(const Ring& ring, const SequenceChunk& queries, const SequenceChunk& keys) {
  return ring.config.causal && keys.global_begin > queries.global_begin + queries.valid - 1;
}

// A causal pair of a chunk with itself takes the exact causal split; every other pair that is not
// skipped has all its keys in the past of all its queries (or is non-causal): one product.
RpeBlockKind pair_kind(const Ring& ring, const SequenceChunk& queries, const SequenceChunk& keys) {
  return ring.config.causal && keys.global_begin == queries.global_begin
             ? RpeBlockKind::causal_diagonal
             : RpeBlockKind::full;
}

// The pairs of this rank's query chunks with the visitor's key chunks: visit(query chunk index,
// key chunk, weights, first entry of b, kind).
template <typename Visit>
void for_each_pair(Ring& ring, const Visitor& visitor, Exchange& exchange, Visit&& visit) {
  const ChunkPlan owner_plan(ring.layout, visitor.owner);
  for (std::size_t i = 0; i < ring.plan.chunks().size(); ++i) {
    const SequenceChunk& queries = ring.plan.chunks()[i];
    for (const SequenceChunk& keys : owner_plan.chunks()) {
      if (queries.valid == 0 || keys.valid == 0) {
        continue;
      }
      if (pair_skipped(ring, queries, keys)) {
        ++ring.stats.blocks_skipped;
        continue;
      }
      timed_compute(ring.stats, [&] {
        const std::int64_t first = rpe_block_first_entry(
            ring.layout.global_length(), queries.global_begin, queries.valid, keys.global_begin);
        const Tensor weights =
            Tensor::empty({ring.b.size(0), queries.valid + keys.valid - 1}, DType::f32);
        rpe_position_weights(ring.context, ring.b, ring.config.causal, first, weights);
        visit(i, keys, weights, first, pair_kind(ring, queries, keys));
      });
      exchange.poll();
    }
  }
}

// Posts the exchange of `names` tensors of `from` to the next rank and into `into` from the
// previous one.
void post_shift(Ring& ring, Exchange& exchange, const std::vector<Tensor>& from,
                const std::vector<Tensor>& into, const std::vector<int>& tags) {
  const int next = (ring.rank() + 1) % ring.ranks();
  const int previous = (ring.rank() + ring.ranks() - 1) % ring.ranks();
  for (std::size_t i = 0; i < from.size(); ++i) {
    exchange.post(ring.communicator.irecv(into[i], previous, tags[i]));
    exchange.post(ring.communicator.isend(from[i], next, tags[i]));
  }
}

// The ring: every rank's k and v visit every rank once; `compute(visitor)` runs while the next
// visitor's k and v are in flight. With gradients, each visitor's grad_k and grad_v move on after
// the computation, and after the last step one more hop brings them home: the returned tensors
// are this rank's own grad_k and grad_v.
template <typename Compute>
std::pair<Tensor, Tensor> run_ring(Ring& ring, const Tensor& k, const Tensor& v, bool gradients,
                                   Compute&& compute) {
  const WallTimer in_flight;
  Exchange exchange(ring.stats);
  Visitor current{ring.rank(), k, v, Tensor(), Tensor()};
  if (gradients) {
    current.grad_k = Tensor::zeros(k.shape(), DType::f32);
    current.grad_v = Tensor::zeros(v.shape(), DType::f32);
  }
  for (int step = 0; step < ring.ranks(); ++step) {
    const bool last = step == ring.ranks() - 1;
    Visitor next{(current.owner + ring.ranks() - 1) % ring.ranks(), Tensor(), Tensor(), Tensor(),
                 Tensor()};
    if (!last) {
      next.k = Tensor::empty(k.shape(), DType::f32);
      next.v = Tensor::empty(v.shape(), DType::f32);
      post_shift(ring, exchange, {current.k, current.v}, {next.k, next.v}, {kKeyTag, kValueTag});
    }
    compute(current, exchange);
    exchange.wait();
    if (gradients && ring.ranks() > 1) {
      next.grad_k = Tensor::empty(k.shape(), DType::f32);
      next.grad_v = Tensor::empty(v.shape(), DType::f32);
      post_shift(ring, exchange, {current.grad_k, current.grad_v}, {next.grad_k, next.grad_v},
                 {kKeyGradTag, kValueGradTag});
      exchange.wait();
    }
    if (last) {
      if (ring.ranks() > 1) {
        current.grad_k = next.grad_k;
        current.grad_v = next.grad_v;
      }
      break;
    }
    current = next;
  }
  ring.stats.communication_seconds += ring.ranks() > 1 ? in_flight.seconds() : 0.0;
  return {current.grad_k, current.grad_v};
}

// The numerators of this rank's query chunks: one pass of the ring.
void accumulate_numerators(Ring& ring, const Tensor& k, const Tensor& v) {
  run_ring(ring, k, v, false, [&](const Visitor& visitor, Exchange& exchange) {
    for_each_pair(ring, visitor, exchange,
                  [&](std::size_t i, const SequenceChunk& keys, const Tensor& weights, std::int64_t,
                      RpeBlockKind kind) {
                    rpe_attention_block_forward(ring.context, ring.q[i],
                                                chunk_rows(visitor.k, keys.local_begin, keys.valid),
                                                chunk_rows(visitor.v, keys.local_begin, keys.valid),
                                                weights, ring.numerator[i], kind);
                  });
  });
}

void forward_on_chunks(Ring& ring, const Tensor& k, const Tensor& v, const Tensor& out) {
  accumulate_numerators(ring, k, v);
  out.zero();
  for (std::size_t i = 0; i < ring.plan.chunks().size(); ++i) {
    const SequenceChunk& chunk = ring.plan.chunks()[i];
    if (chunk.valid == 0) {
      continue;
    }
    const Tensor chunk_out = chunk_rows(out, chunk.local_begin, chunk.valid);
    rpe_attention_readout(ring.context, ring.numerator[i], ring.config.eps, chunk_out);
    place_rows(chunk_out, out, chunk.local_begin);
  }
}

void backward_on_chunks(Ring& ring, const Tensor& k, const Tensor& v, const Tensor& grad_out,
                        const Tensor& grad_q, const Tensor& grad_k, const Tensor& grad_v,
                        const Tensor& grad_b) {
  accumulate_numerators(ring, k, v);
  for (std::size_t i = 0; i < ring.plan.chunks().size(); ++i) {
    const SequenceChunk& chunk = ring.plan.chunks()[i];
    ring.readout_grad.push_back(Tensor::empty(ring.numerator[i].shape(), DType::f32));
    ring.grad_q.push_back(Tensor::zeros(ring.q[i].shape(), DType::f32));
    if (chunk.valid > 0) {
      rpe_attention_readout_backward(ring.context, ring.numerator[i],
                                     chunk_rows(grad_out, chunk.local_begin, chunk.valid),
                                     ring.config.eps, ring.readout_grad[i]);
    }
  }
  ring.grad_b = Tensor::zeros(ring.b.shape(), DType::f32);
  const auto [own_grad_k, own_grad_v] =
      run_ring(ring, k, v, true, [&](const Visitor& visitor, Exchange& exchange) {
        for_each_pair(
            ring, visitor, exchange,
            [&](std::size_t i, const SequenceChunk& keys, const Tensor& weights, std::int64_t first,
                RpeBlockKind kind) {
              const Tensor chunk_grad_k = chunk_rows(visitor.grad_k, keys.local_begin, keys.valid);
              const Tensor chunk_grad_v = chunk_rows(visitor.grad_v, keys.local_begin, keys.valid);
              const Tensor grad_weights = Tensor::zeros(weights.shape(), DType::f32);
              rpe_attention_block_backward(ring.context, ring.q[i],
                                           chunk_rows(visitor.k, keys.local_begin, keys.valid),
                                           chunk_rows(visitor.v, keys.local_begin, keys.valid),
                                           weights, ring.readout_grad[i], ring.grad_q[i],
                                           chunk_grad_k, chunk_grad_v, grad_weights, kind);
              place_rows(chunk_grad_k, visitor.grad_k, keys.local_begin);
              place_rows(chunk_grad_v, visitor.grad_v, keys.local_begin);
              rpe_position_weights_backward(ring.context, weights, grad_weights, first,
                                            ring.grad_b);
            });
      });
  grad_k.copy_from(own_grad_k);
  grad_v.copy_from(own_grad_v);
  grad_q.zero();
  for (std::size_t i = 0; i < ring.plan.chunks().size(); ++i) {
    const SequenceChunk& chunk = ring.plan.chunks()[i];
    if (chunk.valid > 0) {
      place_rows(ring.grad_q[i], grad_q, chunk.local_begin);
    }
  }
  if (grad_b.defined()) {
    timed_exposed_communication(ring.stats,
                                [&] { ring.communicator.all_reduce(ring.grad_b, ReduceOp::sum); });
    grad_b.copy_from(ring.grad_b);
  }
}

void validate(const Communicator& communicator, const SequenceLayout& layout, const Tensor& q,
              const Tensor& k, const Tensor& v, const Tensor& b) {
  require_host_sequence_group(kOp, communicator, layout);
  require_qkv_cpu_shards(kOp, layout, {&q, &k, &v});
  LONGSEQ_REQUIRE(b.rank() == 2 && b.size(0) == q.size(1) &&
                      b.size(1) == 2 * layout.global_length() - 1 && b.dtype() == DType::f32 &&
                      b.device() == Device::cpu && b.is_contiguous(),
                  "[{}] b must be a contiguous fp32 CPU tensor ({}, {}), got {}", kOp, q.size(1),
                  2 * layout.global_length() - 1, b.describe());
}

}  // namespace

void distributed_rpe_attention_forward(ComputeContext& context, Communicator& communicator,
                                       const SequenceLayout& layout,
                                       const RpeAttentionParallelConfig& config, const Tensor& q,
                                       const Tensor& k, const Tensor& v, const Tensor& b,
                                       const Tensor& out, DistributedAttentionStats* stats) {
  validate(communicator, layout, q, k, v, b);
  StatsScope scope(communicator, stats);
  compute_on_chunks(communicator, layout, scope.stats(), {q, k, v}, {2, 2, 2}, {out}, {2},
                    [&](const SequenceLayout& chunked, const std::vector<Tensor>& in,
                        const std::vector<Tensor>& results) {
                      Ring ring = make_ring(context, communicator, chunked, config, scope.stats(),
                                            b, in[0], in[2].size(3));
                      forward_on_chunks(ring, in[1], in[2], results[0]);
                    });
}

void distributed_rpe_attention_backward(ComputeContext& context, Communicator& communicator,
                                        const SequenceLayout& layout,
                                        const RpeAttentionParallelConfig& config, const Tensor& q,
                                        const Tensor& k, const Tensor& v, const Tensor& b,
                                        const Tensor& grad_out, const Tensor& grad_q,
                                        const Tensor& grad_k, const Tensor& grad_v,
                                        const Tensor& grad_b, DistributedAttentionStats* stats) {
  validate(communicator, layout, q, k, v, b);
  StatsScope scope(communicator, stats);
  compute_on_chunks(communicator, layout, scope.stats(), {q, k, v, grad_out}, {2, 2, 2, 2},
                    {grad_q, grad_k, grad_v}, {2, 2, 2},
                    [&](const SequenceLayout& chunked, const std::vector<Tensor>& in,
                        const std::vector<Tensor>& grads) {
                      Ring ring = make_ring(context, communicator, chunked, config, scope.stats(),
                                            b, in[0], in[2].size(3));
                      backward_on_chunks(ring, in[1], in[2], in[3], grads[0], grads[1], grads[2],
                                         grad_b);
                    });
}

}  // namespace longseq
