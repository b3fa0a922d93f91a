#include "parallel/s4_parallel.h"

#include <vector>

#include "parallel/sequence_chunks.h"
#include "parallel/shard_checks.h"
#include "parallel/stats_scope.h"

namespace longseq {

namespace {

constexpr const char* kOp = "distributed_s4";

// Per-chunk scan elements: flat [L, x (B, H, M, 2)] with a view of x.
struct ChunkElements {
  std::vector<Tensor> flat;
  std::vector<Tensor> states;
};

ChunkElements make_elements(std::size_t count, const Shape& state_shape) {
  ChunkElements elements;
  const std::int64_t size = shape_numel(state_shape);
  for (std::size_t i = 0; i < count; ++i) {
    const Tensor flat = Tensor::zeros({1 + size}, DType::f32);
    elements.flat.push_back(flat);
    elements.states.push_back(flat.slice(0, 1, 1 + size).reshape(state_shape));
  }
  return elements;
}

// acc <- next after acc: x <- Abar^(L_next) x + x_next (forward; (Abar^T)^(L_next) in reverse).
StateMonoid affine_monoid(ComputeContext& context, const S4Parameters& parameters,
                          const Shape& state_shape, bool transposed) {
  const std::int64_t size = shape_numel(state_shape);
  StateMonoid monoid;
  monoid.combine = [&context, parameters, state_shape, size, transposed](const Tensor& acc,
                                                                         const Tensor& next) {
    const auto length = static_cast<std::int64_t>(next.data<float>()[0]);
    s4_transition(context, parameters, length, transposed,
                  acc.slice(0, 1, 1 + size).reshape(state_shape));
    acc.data<float>()[0] += static_cast<float>(length);
    for (std::int64_t e = 1; e <= size; ++e) {
      acc.data<float>()[e] += next.data<float>()[e];
    }
  };
  monoid.identity = [](const Tensor& state) { state.zero(); };
  return monoid;
}

struct Work {
  ComputeContext& context;
  Communicator& communicator;
  const S4ParallelConfig& config;
  DistributedAttentionStats& stats;
  const S4Parameters& parameters;
  ChunkPlan plan;
  std::vector<Tensor> u;  // per chunk, (B, H, valid)
  Shape state_shape;

  [[nodiscard]] ChunkElements elements() const {
    return make_elements(plan.chunks().size(), state_shape);
  }
};

Work make_work(ComputeContext& context, Communicator& communicator, const SequenceLayout& layout,
               const S4ParallelConfig& config, DistributedAttentionStats& stats,
               const S4Parameters& parameters, const Tensor& u) {
  Work work{context,    communicator,
            config,     stats,
            parameters, ChunkPlan(layout, communicator.rank()),
            {},         {u.size(0), u.size(1), parameters.modes(), 2}};
  for (const SequenceChunk& chunk : work.plan.chunks()) {
    work.u.push_back(chunk_rows(u, chunk.local_begin, chunk.valid));
  }
  return work;
}

void scan(Work& work, const ChunkElements& local, const ChunkElements& result,
          ScanDirection direction) {
  timed_exposed_communication(work.stats, [&] {
    exclusive_state_scan(work.communicator, work.config.strategy, direction,
                         affine_monoid(work.context, work.parameters, work.state_shape,
                                       direction == ScanDirection::reverse),
                         work.plan.owners(), work.plan.indices(), local.flat, result.flat);
  });
}

// Every chunk's incoming state; with `outputs`, each chunk's local outputs (from zero) too.
ChunkElements incoming_states(Work& work, const std::vector<Tensor>* outputs) {
  ChunkElements incoming = work.elements();
  if (work.plan.alone()) {
    if (outputs != nullptr) {
      s4_forward(work.context, work.parameters, work.u[0], Tensor(), (*outputs)[0], Tensor());
    }
    return incoming;
  }
  const ChunkElements local = work.elements();
  timed_compute(work.stats, [&] {
    for (std::size_t i = 0; i < work.u.size(); ++i) {
      const Tensor y =
          outputs != nullptr ? (*outputs)[i] : Tensor::empty(work.u[i].shape(), DType::f32);
      s4_forward(work.context, work.parameters, work.u[i], Tensor(), y, local.states[i]);
      local.flat[i].data<float>()[0] = static_cast<float>(work.u[i].size(2));
    }
  });
  scan(work, local, incoming, ScanDirection::forward);
  return incoming;
}

void forward_in_chunks(Work& work, const Tensor& y) {
  std::vector<Tensor> outputs;
  for (const Tensor& u : work.u) {
    outputs.push_back(Tensor::empty(u.shape(), DType::f32));
  }
  const ChunkElements incoming = incoming_states(work, &outputs);
  y.zero();
  timed_compute(work.stats, [&] {
    for (std::size_t i = 0; i < work.u.size(); ++i) {
      const SequenceChunk& chunk = work.plan.chunks()[i];
      if (!work.plan.alone() && chunk.valid > 0) {
        // The response of the incoming state: the piece run on zero inputs from x_in.
        const Tensor zeros = Tensor::zeros(work.u[i].shape(), DType::f32);
        const Tensor response = Tensor::empty(work.u[i].shape(), DType::f32);
        s4_forward(work.context, work.parameters, zeros, incoming.states[i], response, Tensor());
        for (std::int64_t e = 0; e < response.numel(); ++e) {
          outputs[i].data<float>()[e] += response.data<float>()[e];
        }
      }
      place_rows(outputs[i], y, chunk.local_begin);
    }
  });
}

void backward_in_chunks(Work& work, const Tensor& grad_y, const Tensor& grad_u,
                        const S4Parameters& grad_parameters) {
  const ChunkElements incoming = incoming_states(work, nullptr);
  std::vector<Tensor> chunk_grad_y;
  for (const SequenceChunk& chunk : work.plan.chunks()) {
    chunk_grad_y.push_back(chunk_rows(grad_y, chunk.local_begin, chunk.valid));
  }
  const ChunkElements grad_after = work.elements();
  if (!work.plan.alone()) {
    const ChunkElements local = work.elements();
    const S4Parameters scratch = zeros_like(work.parameters);
    timed_compute(work.stats, [&] {
      for (std::size_t i = 0; i < work.u.size(); ++i) {
        const Tensor unused = Tensor::empty(work.u[i].shape(), DType::f32);
        s4_backward(work.context, work.parameters, work.u[i], incoming.states[i], chunk_grad_y[i],
                    Tensor(), unused, local.states[i], scratch);
        local.flat[i].data<float>()[0] = static_cast<float>(work.u[i].size(2));
      }
    });
    scan(work, local, grad_after, ScanDirection::reverse);
  }
  grad_u.zero();
  for (const Tensor& tensor : grad_parameters.list()) {
    tensor.zero();
  }
  timed_compute(work.stats, [&] {
    for (std::size_t i = 0; i < work.u.size(); ++i) {
      const SequenceChunk& chunk = work.plan.chunks()[i];
      const Tensor chunk_grad_u = chunk_rows(grad_u, chunk.local_begin, chunk.valid);
      s4_backward(work.context, work.parameters, work.u[i], incoming.states[i], chunk_grad_y[i],
                  grad_after.states[i], chunk_grad_u, Tensor(), grad_parameters);
      place_rows(chunk_grad_u, grad_u, chunk.local_begin);
    }
  });
}

void validate(const Communicator& communicator, const SequenceLayout& layout,
              const S4Parameters& parameters, const Tensor& u) {
  require_host_sequence_group(kOp, communicator, layout);
  LONGSEQ_REQUIRE(is_cpu_shard(u, 3, layout) && u.size(1) == parameters.channels(),
                  "[{}] u must be a contiguous fp32 CPU shard (B, {}, {}), got {}", kOp,
                  parameters.channels(), layout.shard_length(), u.describe());
}

}  // namespace

void distributed_s4_forward(ComputeContext& context, Communicator& communicator,
                            const SequenceLayout& layout, const S4ParallelConfig& config,
                            const S4Parameters& parameters, const Tensor& u, const Tensor& y,
                            DistributedAttentionStats* stats) {
  validate(communicator, layout, parameters, u);
  StatsScope scope(communicator, stats);
  compute_on_chunks(communicator, layout, scope.stats(), {u}, {2}, {y}, {2},
                    [&](const SequenceLayout& chunked, const std::vector<Tensor>& in,
                        const std::vector<Tensor>& results) {
                      Work work = make_work(context, communicator, chunked, config, scope.stats(),
                                            parameters, in[0]);
                      forward_in_chunks(work, results[0]);
                    });
}

void distributed_s4_backward(ComputeContext& context, Communicator& communicator,
                             const SequenceLayout& layout, const S4ParallelConfig& config,
                             const S4Parameters& parameters, const Tensor& u, const Tensor& grad_y,
                             const Tensor& grad_u, const S4Parameters& grad_parameters,
                             DistributedAttentionStats* stats) {
  validate(communicator, layout, parameters, u);
  StatsScope scope(communicator, stats);
  compute_on_chunks(communicator, layout, scope.stats(), {u, grad_y}, {2, 2}, {grad_u}, {2},
                    [&](const SequenceLayout& chunked, const std::vector<Tensor>& in,
                        const std::vector<Tensor>& grads) {
                      Work work = make_work(context, communicator, chunked, config, scope.stats(),
                                            parameters, in[0]);
                      backward_in_chunks(work, in[1], grads[0], grad_parameters);
                    });
  timed_exposed_communication(scope.stats(), [&] {
    for (const Tensor& tensor : grad_parameters.list()) {
      communicator.all_reduce(tensor, ReduceOp::sum);
    }
  });
}

}  // namespace longseq
