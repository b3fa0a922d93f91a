// The diagonal state-space layer over a sharded sequence (parallel/diagonal_ssm_parallel.h).
//
// A chunk c of L_c valid positions maps its incoming state to its final one by the affine map
// x -> Abar^(L_c) x + x_local,c. The scan element of a chunk is the flat fp32 buffer
//   [ a (H, M, 2) | b (B, H, M, 2) ],   a = Abar^(L_c),  b = x_local,c (from zero)
// and two elements compose (a1, b1) then (a2, b2) = (a2 a1, a2 b1 + b2), identity (1, 0): the
// exclusive forward scan leaves in b the state every chunk starts from.
// Backward: the stored gradient g of a chunk's incoming state is conj(Abar^(L_c)) g_out + r_c,
// where r_c is what its correction terms send to it; the same composition run in reverse order
// over the elements (conj(Abar^(L_c)), r_c) leaves in b the gradient of every chunk's final state.
// Each chunk then runs the full layer backward from its incoming state and the gradient of its
// final state; the parameter gradients of the chunks are summed and all-reduced.
#include "parallel/diagonal_ssm_parallel.h"

#include <vector>

#include "parallel/sequence_chunks.h"
#include "parallel/shard_checks.h"
#include "parallel/stats_scope.h"

namespace longseq {

namespace {

constexpr const char* kOp = "distributed_diagonal_ssm";

// Flat affine elements [a | b] with views of both parts.
struct AffineStates {
  std::vector<Tensor> flat;
  std::vector<Tensor> decay;  // (H, M, 2)
  std::vector<Tensor> state;  // (B, H, M, 2)
};

AffineStates make_states(std::size_t count, std::int64_t batch, std::int64_t channels,
                         std::int64_t modes) {
  const std::int64_t decay_size = channels * modes * 2;
  const std::int64_t state_size = batch * decay_size;
  AffineStates states;
  for (std::size_t i = 0; i < count; ++i) {
    const Tensor flat = Tensor::zeros({decay_size + state_size}, DType::f32);
    states.flat.push_back(flat);
    states.decay.push_back(flat.slice(0, 0, decay_size).reshape({channels, modes, 2}));
    states.state.push_back(
        flat.slice(0, decay_size, decay_size + state_size).reshape({batch, channels, modes, 2}));
  }
  return states;
}

// (a1, b1) then (a2, b2) = (a2 a1, a2 b1 + b2) on flat [a | b] buffers of `decay_size` floats of
// a followed by batch copies of b.
StateMonoid affine_monoid(std::int64_t decay_size) {
  StateMonoid monoid;
  monoid.combine = [decay_size](const Tensor& acc, const Tensor& next) {
    float* a1 = acc.data<float>();
    const float* a2 = next.data<float>();
    const std::int64_t total = acc.numel();
    for (std::int64_t k = decay_size; k < total; k += 2) {
      const std::int64_t i = (k - decay_size) % decay_size;
      const float re = a2[i] * a1[k] - a2[i + 1] * a1[k + 1] + a2[k];
      const float im = a2[i] * a1[k + 1] + a2[i + 1] * a1[k] + a2[k + 1];
      a1[k] = re;
      a1[k + 1] = im;
    }
    for (std::int64_t i = 0; i < decay_size; i += 2) {
      const float re = a2[i] * a1[i] - a2[i + 1] * a1[i + 1];
      const float im = a2[i] * a1[i + 1] + a2[i + 1] * a1[i];
      a1[i] = re;
      a1[i + 1] = im;
    }
  };
  monoid.identity = [decay_size](const Tensor& state) {
    state.zero();
    float* a = state.data<float>();
    for (std::int64_t i = 0; i < decay_size; i += 2) {
      a[i] = 1.0f;
    }
  };
  return monoid;
}

// Everything one call works on.
struct Work {
  ComputeContext& context;
  Communicator& communicator;
  const DiagonalSsmParallelConfig& config;
  const DiagonalSsmParameters& parameters;
  DistributedAttentionStats& stats;
  ChunkPlan plan;
  std::vector<Tensor> u;  // per chunk (B, H, valid)
  std::int64_t batch, channels, modes;

  [[nodiscard]] AffineStates states() const {
    return make_states(plan.chunks().size(), batch, channels, modes);
  }
  [[nodiscard]] bool alone() const { return plan.alone(); }
  [[nodiscard]] std::int64_t valid(std::size_t i) const { return plan.chunks()[i].valid; }
};

Work make_work(ComputeContext& context, Communicator& communicator, const SequenceLayout& layout,
               const DiagonalSsmParallelConfig& config, const DiagonalSsmParameters& parameters,
               DistributedAttentionStats& stats, const Tensor& u) {
  Work work{context,   communicator,
            config,    parameters,
            stats,     ChunkPlan(layout, communicator.rank()),
            {},        u.size(0),
            u.size(1), parameters.b.size(1)};
  for (const SequenceChunk& chunk : work.plan.chunks()) {
    work.u.push_back(chunk_rows(u, chunk.local_begin, chunk.valid));
  }
  return work;
}

void scan(Work& work, ScanDirection direction, const AffineStates& local,
          const AffineStates& result) {
  timed_exposed_communication(work.stats, [&] {
    exclusive_state_scan(work.communicator, work.config.strategy, direction,
                         affine_monoid(work.channels * work.modes * 2), work.plan.owners(),
                         work.plan.indices(), local.flat, result.flat);
  });
}

// The state each chunk starts from (undefined: zero, when it is the first chunk of all).
std::vector<Tensor> incoming_states(Work& work) {
  std::vector<Tensor> incoming(work.u.size());
  if (work.alone()) {
    return incoming;
  }
  const AffineStates local = work.states();
  timed_compute(work.stats, [&] {
    for (std::size_t i = 0; i < work.u.size(); ++i) {
      local.decay[i].copy_from(diagonal_ssm_decay(work.parameters, work.valid(i)));
      if (work.valid(i) > 0) {
        diagonal_ssm_forward(work.context, work.config.kind, work.parameters, work.u[i], Tensor(),
                             Tensor(), local.state[i]);
      }
    }
  });
  const AffineStates result = work.states();
  scan(work, ScanDirection::forward, local, result);
  for (std::size_t i = 0; i < work.u.size(); ++i) {
    if (work.plan.chunks()[i].index > 0) {
      incoming[i] = result.state[i];
    }
  }
  return incoming;
}

void forward_in_chunks(Work& work, const Tensor& y) {
  const std::vector<Tensor> incoming = incoming_states(work);
  y.zero();
  timed_compute(work.stats, [&] {
    for (std::size_t i = 0; i < work.u.size(); ++i) {
      const SequenceChunk& chunk = work.plan.chunks()[i];
      if (chunk.valid == 0) {
        continue;
      }
      const Tensor chunk_y = chunk_rows(y, chunk.local_begin, chunk.valid);
      diagonal_ssm_forward(work.context, work.config.kind, work.parameters, work.u[i], incoming[i],
                           chunk_y, Tensor());
      place_rows(chunk_y, y, chunk.local_begin);
    }
  });
}

// Overwrites grad_u; ADDS this rank's parameter gradients into grad_parameters.
void backward_in_chunks(Work& work, const Tensor& grad_y, const Tensor& grad_u,
                        const DiagonalSsmParameters& grad_parameters) {
  const std::vector<Tensor> incoming = incoming_states(work);
  std::vector<Tensor> chunk_grad_y;
  for (const SequenceChunk& chunk : work.plan.chunks()) {
    chunk_grad_y.push_back(chunk_rows(grad_y, chunk.local_begin, chunk.valid));
  }
  // The gradient of each chunk's final state, from the corrections of the chunks after it.
  std::vector<Tensor> grad_final(work.u.size());
  if (!work.alone()) {
    const AffineStates local = work.states();
    timed_compute(work.stats, [&] {
      for (std::size_t i = 0; i < work.u.size(); ++i) {
        const Tensor decay = diagonal_ssm_decay(work.parameters, work.valid(i));
        float* a = decay.data<float>();
        for (std::int64_t k = 1; k < decay.numel(); k += 2) {
          a[k] = -a[k];
        }
        local.decay[i].copy_from(decay);
        if (work.valid(i) > 0 && incoming[i].defined()) {
          diagonal_ssm_backward(work.context, work.config.kind, work.parameters, work.u[i],
                                chunk_grad_y[i], incoming[i], Tensor(), Tensor(), {},
                                local.state[i]);
        }
      }
    });
    const AffineStates result = work.states();
    scan(work, ScanDirection::reverse, local, result);
    grad_final = result.state;
  }
  grad_u.zero();
  timed_compute(work.stats, [&] {
    for (std::size_t i = 0; i < work.u.size(); ++i) {
      const SequenceChunk& chunk = work.plan.chunks()[i];
      if (chunk.valid == 0) {
        continue;
      }
      const Tensor chunk_grad_u = chunk_rows(grad_u, chunk.local_begin, chunk.valid);
      diagonal_ssm_backward(work.context, work.config.kind, work.parameters, work.u[i],
                            chunk_grad_y[i], incoming[i], grad_final[i], chunk_grad_u,
                            grad_parameters, Tensor());
      place_rows(chunk_grad_u, grad_u, chunk.local_begin);
    }
  });
}

void validate(const Communicator& communicator, const SequenceLayout& layout,
              const DiagonalSsmParameters& parameters, const std::vector<const Tensor*>& shards) {
  require_host_sequence_group(kOp, communicator, layout);
  for (const Tensor* tensor : shards) {
    LONGSEQ_REQUIRE(is_cpu_shard(*tensor, 3, layout),
                    "[{}] u, y and their gradients must be contiguous fp32 CPU shards (B, H, {}), "
                    "got {}",
                    kOp, layout.shard_length(), tensor->describe());
  }
  LONGSEQ_REQUIRE(parameters.b.defined() && parameters.b.device() == Device::cpu,
                  "[{}] the parameters must be CPU tensors", kOp);
}

}  // namespace

void distributed_diagonal_ssm_forward(ComputeContext& context, Communicator& communicator,
                                      const SequenceLayout& layout,
                                      const DiagonalSsmParallelConfig& config,
                                      const DiagonalSsmParameters& parameters, const Tensor& u,
                                      const Tensor& y, DistributedAttentionStats* stats) {
  validate(communicator, layout, parameters, {&u, &y});
  StatsScope scope(communicator, stats);
  compute_on_chunks(communicator, layout, scope.stats(), {u}, {2}, {y}, {2},
                    [&](const SequenceLayout& chunked, const std::vector<Tensor>& in,
                        const std::vector<Tensor>& results) {
                      Work work = make_work(context, communicator, chunked, config, parameters,
                                            scope.stats(), in[0]);
                      forward_in_chunks(work, results[0]);
                    });
}

void distributed_diagonal_ssm_backward(ComputeContext& context, Communicator& communicator,
                                       const SequenceLayout& layout,
                                       const DiagonalSsmParallelConfig& config,
                                       const DiagonalSsmParameters& parameters, const Tensor& u,
                                       const Tensor& grad_y, const Tensor& grad_u,
                                       const DiagonalSsmParameters& grad_parameters,
                                       DistributedAttentionStats* stats) {
  validate(communicator, layout, parameters, {&u, &grad_y, &grad_u});
  StatsScope scope(communicator, stats);
  const DiagonalSsmParameters local = zeros_like(parameters);
  compute_on_chunks(communicator, layout, scope.stats(), {u, grad_y}, {2, 2}, {grad_u}, {2},
                    [&](const SequenceLayout& chunked, const std::vector<Tensor>& in,
                        const std::vector<Tensor>& grads) {
                      Work work = make_work(context, communicator, chunked, config, parameters,
                                            scope.stats(), in[0]);
                      backward_in_chunks(work, in[1], grads[0], local);
                    });
  timed_exposed_communication(scope.stats(), [&] {
    for (const Tensor* tensor : {&local.log_dt, &local.lambda, &local.b, &local.c, &local.d}) {
      communicator.all_reduce(*tensor, ReduceOp::sum);
    }
  });
  grad_parameters.log_dt.copy_from(local.log_dt);
  grad_parameters.lambda.copy_from(local.lambda);
  grad_parameters.b.copy_from(local.b);
  grad_parameters.c.copy_from(local.c);
  grad_parameters.d.copy_from(local.d);
}

}  // namespace longseq
