#include "parallel/momentum_attention_parallel.h"

#include <vector>

#include "kernels/common/momentum_attention_math.h"
#include "kernels/momentum_attention.h"
#include "parallel/sequence_chunks.h"
#include "parallel/shard_checks.h"
#include "parallel/stats_scope.h"

namespace longseq {

namespace {

constexpr const char* kOp = "distributed_momentum_attention";

// Sizes of the parts of one flat scan element: [C | D | z | decay].
struct StateSizes {
  std::int64_t matrix = 0;      // B H Dk Dv
  std::int64_t normaliser = 0;  // B H Dk

  [[nodiscard]] std::int64_t total() const { return 2 * matrix + normaliser + 1; }
  [[nodiscard]] std::int64_t decay_at() const { return 2 * matrix + normaliser; }
};

// (C, D, z, m) then (C', D', z', m') = (C + C', m' D + D', z + z', m m'): the composition of the
// affine maps of two consecutive chunks, for the states (forward) and their gradients (reverse).
StateMonoid decayed_state_monoid(StateSizes sizes) {
  StateMonoid monoid;
  monoid.combine = [sizes](const Tensor& acc, const Tensor& next) {
    float* a = acc.data<float>();
    const float* n = next.data<float>();
    const float decay = n[sizes.decay_at()];
    for (std::int64_t e = 0; e < sizes.matrix; ++e) {
      a[e] += n[e];
    }
    for (std::int64_t e = sizes.matrix; e < 2 * sizes.matrix; ++e) {
      a[e] = decay * a[e] + n[e];
    }
    for (std::int64_t e = 2 * sizes.matrix; e < sizes.decay_at(); ++e) {
      a[e] += n[e];
    }
    a[sizes.decay_at()] *= decay;
  };
  monoid.identity = [sizes](const Tensor& state) {
    state.zero();
    state.data<float>()[sizes.decay_at()] = 1.0f;
  };
  return monoid;
}

// The per-chunk scan elements of this rank, each one flat buffer with (C, D, z) views into it.
struct ChunkStates {
  std::vector<Tensor> flat;
  std::vector<MomentumAttentionState> views;
};

// Everything one call works on: the plan, the chunks' inputs, and the options.
struct Work {
  ComputeContext& context;
  Communicator& communicator;
  const MomentumAttentionParallelConfig& config;
  DistributedAttentionStats& stats;
  ChunkPlan plan;
  std::vector<Tensor> q, k, v;  // per chunk, (B, H, valid, D)
  std::int64_t batch, heads, key_dim, value_dim;

  [[nodiscard]] MomentumAttentionOptions options() const {
    MomentumAttentionOptions options;
    options.momentum = config.momentum;
    options.step = config.step;
    options.eps = config.eps;
    return options;
  }
  [[nodiscard]] StateSizes sizes() const {
    return {batch * heads * key_dim * value_dim, batch * heads * key_dim};
  }
  // Zero states whose decay slot holds mu^(valid rows) of each chunk: a chunk's summary.
  [[nodiscard]] ChunkStates states() const {
    const StateSizes s = sizes();
    ChunkStates states;
    for (const SequenceChunk& chunk : plan.chunks()) {
      const Tensor flat = Tensor::zeros({s.total()}, DType::f32);
      flat.data<float>()[s.decay_at()] = momentum_power(config.momentum, chunk.valid);
      states.flat.push_back(flat);
      const Shape matrix{batch, heads, key_dim, value_dim};
      states.views.push_back(
          {flat.slice(0, 0, s.matrix).reshape(matrix),
           flat.slice(0, s.matrix, 2 * s.matrix).reshape(matrix),
           flat.slice(0, 2 * s.matrix, s.decay_at()).reshape({batch, heads, key_dim})});
    }
    return states;
  }
  // One chunk in all: nothing to scan, every incoming state is zero.
  [[nodiscard]] bool alone() const { return plan.alone(); }
};

Work make_work(ComputeContext& context, Communicator& communicator, const SequenceLayout& layout,
               const MomentumAttentionParallelConfig& config, DistributedAttentionStats& stats,
               const Tensor& q, const Tensor& k, const Tensor& v) {
  Work work{context,   communicator, config, stats,     ChunkPlan(layout, communicator.rank()),
            {},        {},           {},     q.size(0), q.size(1),
            q.size(3), v.size(3)};
  for (const SequenceChunk& chunk : work.plan.chunks()) {
    work.q.push_back(chunk_rows(q, chunk.local_begin, chunk.valid));
    work.k.push_back(chunk_rows(k, chunk.local_begin, chunk.valid));
    work.v.push_back(chunk_rows(v, chunk.local_begin, chunk.valid));
  }
  return work;
}

void scan_states(Work& work, const ChunkStates& local, const ChunkStates& result,
                 ScanDirection direction) {
  timed_exposed_communication(work.stats, [&] {
    exclusive_state_scan(work.communicator, work.config.strategy, direction,
                         decayed_state_monoid(work.sizes()), work.plan.owners(),
                         work.plan.indices(), local.flat, result.flat);
  });
}

// The state every chunk starts from: the scanned summaries of the chunks before it.
ChunkStates incoming_states(Work& work) {
  ChunkStates incoming = work.states();
  if (work.alone()) {
    return incoming;
  }
  const ChunkStates summaries = work.states();
  timed_compute(work.stats, [&] {
    for (std::size_t i = 0; i < work.q.size(); ++i) {
      if (work.q[i].size(2) > 0) {
        momentum_attention_forward(work.context, work.q[i], work.k[i], work.v[i], work.options(),
                                   {}, Tensor(), summaries.views[i]);
      }
    }
  });
  scan_states(work, summaries, incoming, ScanDirection::forward);
  return incoming;
}

void forward_in_chunks(Work& work, const Tensor& out) {
  const ChunkStates incoming = incoming_states(work);
  out.zero();
  timed_compute(work.stats, [&] {
    for (std::size_t i = 0; i < work.q.size(); ++i) {
      const SequenceChunk& chunk = work.plan.chunks()[i];
      if (chunk.valid == 0) {
        continue;
      }
      const Tensor chunk_out = chunk_rows(out, chunk.local_begin, chunk.valid);
      momentum_attention_forward(work.context, work.q[i], work.k[i], work.v[i], work.options(),
                                 incoming.views[i], chunk_out, {});
      place_rows(chunk_out, out, chunk.local_begin);
    }
  });
}

void backward_in_chunks(Work& work, const Tensor& grad_out, const Tensor& grad_q,
                        const Tensor& grad_k, const Tensor& grad_v) {
  const ChunkStates incoming = incoming_states(work);
  std::vector<Tensor> chunk_grad_out;
  for (const SequenceChunk& chunk : work.plan.chunks()) {
    chunk_grad_out.push_back(chunk_rows(grad_out, chunk.local_begin, chunk.valid));
  }
  // The gradient each chunk's final state receives from the queries of the later chunks.
  const ChunkStates grad_after = work.states();
  if (!work.alone()) {
    const ChunkStates summaries = work.states();
    timed_compute(work.stats, [&] {
      for (std::size_t i = 0; i < work.q.size(); ++i) {
        if (work.q[i].size(2) > 0) {
          momentum_attention_backward(work.context, work.q[i], work.k[i], work.v[i],
                                      chunk_grad_out[i], work.options(), incoming.views[i], {},
                                      Tensor(), Tensor(), Tensor(), summaries.views[i]);
        }
      }
    });
    scan_states(work, summaries, grad_after, ScanDirection::reverse);
  }
  grad_q.zero();
  grad_k.zero();
  grad_v.zero();
  timed_compute(work.stats, [&] {
    for (std::size_t i = 0; i < work.q.size(); ++i) {
      const SequenceChunk& chunk = work.plan.chunks()[i];
      if (chunk.valid == 0) {
        continue;
      }
      const Tensor chunk_grad_q = chunk_rows(grad_q, chunk.local_begin, chunk.valid);
      const Tensor chunk_grad_k = chunk_rows(grad_k, chunk.local_begin, chunk.valid);
      const Tensor chunk_grad_v = chunk_rows(grad_v, chunk.local_begin, chunk.valid);
      momentum_attention_backward(work.context, work.q[i], work.k[i], work.v[i], chunk_grad_out[i],
                                  work.options(), incoming.views[i], grad_after.views[i],
                                  chunk_grad_q, chunk_grad_k, chunk_grad_v, {});
      place_rows(chunk_grad_q, grad_q, chunk.local_begin);
      place_rows(chunk_grad_k, grad_k, chunk.local_begin);
      place_rows(chunk_grad_v, grad_v, chunk.local_begin);
    }
  });
}

void validate(const Communicator& communicator, const SequenceLayout& layout, const Tensor& q,
              const Tensor& k, const Tensor& v) {
  require_host_sequence_group(kOp, communicator, layout);
  require_qkv_cpu_shards(kOp, layout, {&q, &k, &v});
}

}  // namespace

void distributed_momentum_attention_forward(ComputeContext& context, Communicator& communicator,
                                            const SequenceLayout& layout,
                                            const MomentumAttentionParallelConfig& config,
                                            const Tensor& q, const Tensor& k, const Tensor& v,
                                            const Tensor& out, DistributedAttentionStats* stats) {
  validate(communicator, layout, q, k, v);
  StatsScope scope(communicator, stats);
  compute_on_chunks(communicator, layout, scope.stats(), {q, k, v}, {2, 2, 2}, {out}, {2},
                    [&](const SequenceLayout& chunked, const std::vector<Tensor>& in,
                        const std::vector<Tensor>& results) {
                      Work work = make_work(context, communicator, chunked, config, scope.stats(),
                                            in[0], in[1], in[2]);
                      forward_in_chunks(work, results[0]);
                    });
}

void distributed_momentum_attention_backward(ComputeContext& context, Communicator& communicator,
                                             const SequenceLayout& layout,
                                             const MomentumAttentionParallelConfig& config,
                                             const Tensor& q, const Tensor& k, const Tensor& v,
                                             const Tensor& grad_out, const Tensor& grad_q,
                                             const Tensor& grad_k, const Tensor& grad_v,
                                             DistributedAttentionStats* stats) {
  validate(communicator, layout, q, k, v);
  StatsScope scope(communicator, stats);
  compute_on_chunks(communicator, layout, scope.stats(), {q, k, v, grad_out}, {2, 2, 2, 2},
                    {grad_q, grad_k, grad_v}, {2, 2, 2},
                    [&](const SequenceLayout& chunked, const std::vector<Tensor>& in,
                        const std::vector<Tensor>& grads) {
                      Work work = make_work(context, communicator, chunked, config, scope.stats(),
                                            in[0], in[1], in[2]);
                      backward_in_chunks(work, in[3], grads[0], grads[1], grads[2]);
                    });
}

}  // namespace longseq
