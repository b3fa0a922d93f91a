// The mixer contract: a sequence mixer computes on this rank's shard of the sequence.
//
// A mixer declares its inputs and outputs (each a tensor with a sequence dimension), runs forward
// on the shards of its inputs and keeps what its backward needs, then turns the gradients of its
// outputs into gradients of its inputs. The ShardContext says which positions this rank holds
// (the layout) and whom to exchange with (the sequence-parallel communicator). The exactness
// contract: for every layout and rank count, the shards of the outputs and gradients equal those
// of the same mixer run on one rank, up to floating-point reassociation.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "parallel/communicator.h"
#include "parallel/sequence_layout.h"
#include "runtime/context.h"
#include "runtime/tensor.h"

namespace longseq {

struct ShardContext {
  ComputeContext& compute;
  Communicator& sequence_group;
  const SequenceLayout& layout;
};

// The shape of one input or output: `shape` has the full sequence length at `sequence_dim`; a
// shard has layout.shard_length() there. A parameter has no sequence dimension (sequence_dim -1).
struct TensorSpec {
  std::string name;
  Shape shape;
  int sequence_dim = 2;
  DType dtype = DType::f32;
};

// What a mixer is built from (the bench flags and the YAML keys of a suite).
struct MixerOptions {
  std::int64_t batch = 1;
  std::int64_t heads = 8;
  std::int64_t kv_heads = 0;  // 0: equal to heads
  std::int64_t head_dim = 64;
  bool causal = false;
  std::string strategy = "ring";
  DType dtype = DType::f32;
  Device device = Device::cpu;
  // Seed of the mixer's parameters and random draws (Performer features): every rank and device
  // draws the same values from it.
  std::uint64_t seed = 0;
  // Mechanism settings: each mixer reads the ones it has and ignores the others.
  std::int64_t features = 256;       // performer: random features m
  std::int64_t redraw_interval = 0;  // performer: redraw every this many steps (0: never)
  std::int64_t state_size = 64;      // s4, s4d, dss, gss: SSM state size N
  std::int64_t local_chunk = 0;      // gss: interleaved chunked local softmax attention (0: none)
  double momentum = 0.5;             // momentum: mu
  double momentum_step = 0.8;        // momentum: gamma
};

// What the last forward or backward call did, for benchmarks.
struct MixerStats {
  double flops = 0;  // by the convention of flop_convention()
  std::int64_t bytes_sent = 0;
  double compute_seconds = 0;
  double communication_seconds = 0;
  double exposed_communication_seconds = 0;
};

class Mixer {
 public:
  virtual ~Mixer() = default;

  [[nodiscard]] virtual std::string name() const = 0;
  [[nodiscard]] virtual std::vector<TensorSpec> input_specs(std::int64_t sequence_length) const = 0;
  [[nodiscard]] virtual std::vector<TensorSpec> output_specs(
      std::int64_t sequence_length) const = 0;
  [[nodiscard]] virtual std::string flop_convention() const = 0;
  // FLOPs of one forward / backward pass over the whole sequence of `sequence_length` positions by
  // flop_convention(), summed over all ranks (so independent of the rank count): exactly what
  // last_stats().flops reports after that pass. Lets suites predict the work of a run up front.
  [[nodiscard]] virtual double forward_flops(std::int64_t sequence_length) const = 0;
  [[nodiscard]] virtual double backward_flops(std::int64_t sequence_length) const = 0;
  // The values of MixerOptions::strategy this mixer offers, e.g. {"ring", "alltoall"}; empty for a
  // mixer with a single way of distributing, which ignores MixerOptions::strategy. Lets tests and
  // suites enumerate strategies without knowing the mixer.
  [[nodiscard]] virtual std::vector<std::string> strategies() const { return {}; }

  // inputs / outputs: this rank's shards, in the order of the specs. Keeps what backward needs.
  virtual void forward(ShardContext& context, std::span<const Tensor> inputs,
                       std::span<const Tensor> outputs) = 0;
  // grad_outputs: gradients of the outputs' shards; grad_inputs are overwritten.
  virtual void backward(ShardContext& context, std::span<const Tensor> grad_outputs,
                        std::span<const Tensor> grad_inputs) = 0;

  [[nodiscard]] virtual MixerStats last_stats() const = 0;

  // Learned parameters, replicated on every rank (no sequence dimension), initialised from
  // MixerOptions::seed so that every rank and device holds the same values. Empty for mixers
  // without any. Shapes may depend on the global sequence length (relative-position weights).
  [[nodiscard]] virtual std::vector<TensorSpec> parameter_specs(
      std::int64_t /*sequence_length*/) const {
    return {};
  }
  // The mixer's own parameter tensors in spec order, valid after the first forward: writing into
  // them changes what the mixer computes (tests perturb them for finite differences).
  [[nodiscard]] virtual std::vector<Tensor> parameters() const { return {}; }
  // After backward: dL/d parameters over the whole sequence (summed across the sequence group, so
  // every rank holds the same values), in spec order, on the mixer's device, fp32.
  [[nodiscard]] virtual std::vector<Tensor> parameter_gradients() const { return {}; }
  // The training step, for mixers whose random draws change with it (Performer's feature redraw).
  virtual void set_step(std::int64_t /*step*/) {}
};

}  // namespace longseq
