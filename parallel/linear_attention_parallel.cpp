#include "parallel/linear_attention_parallel.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "kernels/common/linear_attention_math.h"
#include "kernels/linear_attention.h"
#include "parallel/sequence_chunks.h"
#include "parallel/shard_checks.h"
#include "parallel/stats_scope.h"

namespace longseq {

namespace {

constexpr const char* kOp = "distributed_linear_attention";

// The per-chunk states of this rank, each one flat buffer [S | z | log scales] with views into it
// (the log scales only with key log scales).
struct ChunkStates {
  std::vector<Tensor> flat;
  std::vector<LinearAttentionState> views;
};

// Where the parts of a flat state lie.
struct StateGeometry {
  std::int64_t batch, heads, key_dim, value_dim;
  bool scaled;

  [[nodiscard]] std::int64_t s_size() const { return batch * heads * key_dim * value_dim; }
  [[nodiscard]] std::int64_t z_size() const { return batch * heads * key_dim; }
  [[nodiscard]] std::int64_t m_size() const { return scaled ? batch * heads : 0; }
};

// The zero state: 0, at log scale -inf.
void set_identity(const StateGeometry& g, const Tensor& flat) {
  flat.zero();
  float* m = flat.data<float>() + g.s_size() + g.z_size();
  std::fill(m, m + g.m_size(), -std::numeric_limits<float>::infinity());
}

ChunkStates make_states(std::size_t count, const StateGeometry& g) {
  const std::int64_t s_size = g.s_size();
  const std::int64_t z_size = g.z_size();
  ChunkStates states;
  for (std::size_t i = 0; i < count; ++i) {
    const Tensor flat = Tensor::empty({s_size + z_size + g.m_size()}, DType::f32);
    set_identity(g, flat);
    states.flat.push_back(flat);
    states.views.push_back(
        {flat.slice(0, 0, s_size).reshape({g.batch, g.heads, g.key_dim, g.value_dim}),
         flat.slice(0, s_size, s_size + z_size).reshape({g.batch, g.heads, g.key_dim}),
         g.scaled ? flat.slice(0, s_size + z_size, s_size + z_size + g.m_size())
                        .reshape({g.batch, g.heads})
                  : Tensor()});
  }
  return states;
}

// Sums of scaled states exp(m) (S, z): both moved to the larger log scale, then added.
StateMonoid scaled_sum_monoid(const StateGeometry& g) {
  StateMonoid monoid;
  monoid.identity = [g](const Tensor& state) { set_identity(g, state); };
  monoid.combine = [g](const Tensor& acc, const Tensor& next) {
    const std::int64_t per_s = g.key_dim * g.value_dim;
    float* a = acc.data<float>();
    const float* n = next.data<float>();
    const std::int64_t m_at = g.s_size() + g.z_size();
    for (std::int64_t h = 0; h < g.m_size(); ++h) {
      const float scale = std::max(a[m_at + h], n[m_at + h]);
      const float keep = log_scale_factor(a[m_at + h], scale);
      const float add = log_scale_factor(n[m_at + h], scale);
      const auto combine_range = [&](std::int64_t begin, std::int64_t count) {
        for (std::int64_t e = begin; e < begin + count; ++e) {
          a[e] = a[e] * keep + n[e] * add;
        }
      };
      combine_range(h * per_s, per_s);
      combine_range(g.s_size() + h * g.key_dim, g.key_dim);
      a[m_at + h] = scale;
    }
  };
  return monoid;
}

// Everything one call works on: the plan, the chunks' inputs, and the options.
struct Work {
  ComputeContext& context;
  Communicator& communicator;
  const LinearAttentionParallelConfig& config;
  DistributedAttentionStats& stats;
  ChunkPlan plan;
  std::vector<Tensor> q, k, v;        // per chunk, (B, H, valid, D)
  std::vector<Tensor> key_log_scale;  // per chunk, (B, H, valid), or empty
  StateGeometry geometry;
  StateMonoid monoid;

  // The options of chunk i.
  [[nodiscard]] LinearAttentionOptions options(std::size_t i) const {
    LinearAttentionOptions options;
    options.causal = config.causal;
    options.eps = config.eps;
    options.feature_map = config.feature_map;
    if (geometry.scaled) {
      options.key_log_scale = key_log_scale[i];
    }
    return options;
  }
  [[nodiscard]] ChunkStates states() const { return make_states(plan.chunks().size(), geometry); }
  // One chunk in all: nothing to scan, every incoming state is zero.
  [[nodiscard]] bool alone() const { return plan.alone(); }
};

Work make_work(ComputeContext& context, Communicator& communicator, const SequenceLayout& layout,
               const LinearAttentionParallelConfig& config, DistributedAttentionStats& stats,
               const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& key_log_scale) {
  const StateGeometry geometry{q.size(0), q.size(1), q.size(3), v.size(3), key_log_scale.defined()};
  Work work{context,
            communicator,
            config,
            stats,
            ChunkPlan(layout, communicator.rank()),
            {},
            {},
            {},
            {},
            geometry,
            geometry.scaled ? scaled_sum_monoid(geometry) : sum_monoid()};
  for (const SequenceChunk& chunk : work.plan.chunks()) {
    work.q.push_back(chunk_rows(q, chunk.local_begin, chunk.valid));
    work.k.push_back(chunk_rows(k, chunk.local_begin, chunk.valid));
    work.v.push_back(chunk_rows(v, chunk.local_begin, chunk.valid));
    if (geometry.scaled) {
      work.key_log_scale.push_back(chunk_rows(key_log_scale, chunk.local_begin, chunk.valid));
    }
  }
  return work;
}

// result = the exclusive scan of `local` in the direction(s) the mode needs: before (causal
// forward), after (causal backward), or every other chunk (non-causal, both).
void scan_states(Work& work, const ChunkStates& local, const ChunkStates& result,
                 ScanDirection causal_direction) {
  timed_exposed_communication(work.stats, [&] {
    const std::vector<ScanDirection> directions =
        work.config.causal
            ? std::vector<ScanDirection>{causal_direction}
            : std::vector<ScanDirection>{ScanDirection::forward, ScanDirection::reverse};
    ChunkStates partial = work.states();
    for (std::size_t d = 0; d < directions.size(); ++d) {
      const ChunkStates& into = d == 0 ? result : partial;
      exclusive_state_scan(work.communicator, work.config.strategy, directions[d], work.monoid,
                           work.plan.owners(), work.plan.indices(), local.flat, into.flat);
    }
    if (directions.size() == 2) {
      for (std::size_t i = 0; i < result.flat.size(); ++i) {
        work.monoid.combine(result.flat[i], partial.flat[i]);
      }
    }
  });
}

// The state every chunk starts from: the scanned summaries of the other chunks.
ChunkStates incoming_states(Work& work) {
  ChunkStates incoming = work.states();
  if (work.alone()) {
    return incoming;
  }
  const ChunkStates summaries = work.states();
  timed_compute(work.stats, [&] {
    for (std::size_t i = 0; i < work.q.size(); ++i) {
      if (work.q[i].size(2) > 0) {
        linear_attention_forward(work.context, work.q[i], work.k[i], work.v[i], work.options(i), {},
                                 Tensor(), summaries.views[i]);
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
      linear_attention_forward(work.context, work.q[i], work.k[i], work.v[i], work.options(i),
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
  // The gradient each chunk's final state receives from the queries of the other chunks.
  const ChunkStates grad_after = work.states();
  if (!work.alone()) {
    const ChunkStates summaries = work.states();
    timed_compute(work.stats, [&] {
      for (std::size_t i = 0; i < work.q.size(); ++i) {
        if (work.q[i].size(2) > 0) {
          linear_attention_backward(work.context, work.q[i], work.k[i], work.v[i],
                                    chunk_grad_out[i], work.options(i), incoming.views[i], {},
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
      linear_attention_backward(work.context, work.q[i], work.k[i], work.v[i], chunk_grad_out[i],
                                work.options(i), incoming.views[i], grad_after.views[i],
                                chunk_grad_q, chunk_grad_k, chunk_grad_v, {});
      place_rows(chunk_grad_q, grad_q, chunk.local_begin);
      place_rows(chunk_grad_k, grad_k, chunk.local_begin);
      place_rows(chunk_grad_v, grad_v, chunk.local_begin);
    }
  });
}

void validate(const Communicator& communicator, const SequenceLayout& layout, const Tensor& q,
              const Tensor& k, const Tensor& v, const Tensor& key_log_scale) {
  require_host_sequence_group(kOp, communicator, layout);
  require_qkv_cpu_shards(kOp, layout, {&q, &k, &v});
  LONGSEQ_REQUIRE(
      !key_log_scale.defined() ||
          (key_log_scale.rank() == 3 && key_log_scale.size(2) == layout.shard_length() &&
           key_log_scale.dtype() == DType::f32 && key_log_scale.is_contiguous()),
      "[{}] key log scales must be a contiguous fp32 CPU shard (B, H, {}), got {}", kOp,
      layout.shard_length(), key_log_scale.describe());
}

}  // namespace

void distributed_linear_attention_forward(ComputeContext& context, Communicator& communicator,
                                          const SequenceLayout& layout,
                                          const LinearAttentionParallelConfig& config,
                                          const Tensor& q, const Tensor& k, const Tensor& v,
                                          const Tensor& key_log_scale, const Tensor& out,
                                          DistributedAttentionStats* stats) {
  validate(communicator, layout, q, k, v, key_log_scale);
  StatsScope scope(communicator, stats);
  const bool scaled = key_log_scale.defined();
  std::vector<Tensor> inputs{q, k, v};
  if (scaled) {
    inputs.push_back(key_log_scale);
  }
  compute_on_chunks(communicator, layout, scope.stats(), inputs, std::vector<int>(inputs.size(), 2),
                    {out}, {2},
                    [&](const SequenceLayout& chunked, const std::vector<Tensor>& in,
                        const std::vector<Tensor>& results) {
                      Work work = make_work(context, communicator, chunked, config, scope.stats(),
                                            in[0], in[1], in[2], scaled ? in[3] : Tensor());
                      forward_in_chunks(work, results[0]);
                    });
}

void distributed_linear_attention_backward(ComputeContext& context, Communicator& communicator,
                                           const SequenceLayout& layout,
                                           const LinearAttentionParallelConfig& config,
                                           const Tensor& q, const Tensor& k, const Tensor& v,
                                           const Tensor& key_log_scale, const Tensor& grad_out,
                                           const Tensor& grad_q, const Tensor& grad_k,
                                           const Tensor& grad_v, DistributedAttentionStats* stats) {
  validate(communicator, layout, q, k, v, key_log_scale);
  StatsScope scope(communicator, stats);
  const bool scaled = key_log_scale.defined();
  std::vector<Tensor> inputs{q, k, v, grad_out};
  if (scaled) {
    inputs.push_back(key_log_scale);
  }
  compute_on_chunks(communicator, layout, scope.stats(), inputs, std::vector<int>(inputs.size(), 2),
                    {grad_q, grad_k, grad_v}, {2, 2, 2},
                    [&](const SequenceLayout& chunked, const std::vector<Tensor>& in,
                        const std::vector<Tensor>& grads) {
                      Work work = make_work(context, communicator, chunked, config, scope.stats(),
                                            in[0], in[1], in[2], scaled ? in[4] : Tensor());
                      backward_in_chunks(work, in[3], grads[0], grads[1], grads[2]);
                    });
}

}  // namespace longseq
