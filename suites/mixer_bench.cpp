#include "suites/mixer_bench.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "models/mixer_inputs.h"
#include "models/mixer_registry.h"
#include "parallel/sequence_layout.h"
#include "runtime/memory.h"
#include "runtime/process_memory.h"
#include "runtime/timer.h"

namespace longseq {

namespace {

std::vector<Tensor> on_device(std::vector<Tensor> tensors, const MixerOptions& options) {
  for (Tensor& tensor : tensors) {
    tensor = tensor.to(options.dtype).to(options.device);
  }
  return tensors;
}

std::vector<Tensor> zero_shards(const std::vector<TensorSpec>& specs, const SequenceLayout& layout,
                                const MixerOptions& options) {
  std::vector<Tensor> tensors;
  for (const TensorSpec& spec : specs) {
    Shape shape = spec.shape;
    shape[spec.sequence_dim] = layout.shard_length();
    tensors.push_back(Tensor::zeros(shape, options.dtype, options.device));
  }
  return tensors;
}

double scalar_reduce(Communicator& world, double value, ReduceOp op) {
  const Tensor buffer = Tensor::from_vector({0.0f}, {1}).to(DType::f64);
  buffer.data<double>()[0] = value;
  world.all_reduce(buffer, op);
  return buffer.data<double>()[0];
}

double max_relative_error(const Tensor& value, const Tensor& reference) {
  const std::vector<double> x = to_double_vector(value);
  const std::vector<double> r = to_double_vector(reference);
  double difference = 0;
  double magnitude = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    difference = std::max(difference, std::abs(x[i] - r[i]));
    magnitude = std::max(magnitude, std::abs(r[i]));
  }
  return magnitude > 0 ? difference / magnitude : difference;
}

struct PassMeasurement {
  TimingSummary timing;
  MixerStats stats;
  double compute_max_s = 0;
  double compute_min_s = 0;
  std::int64_t peak_mem_bytes = 0;
  std::int64_t extra_mem_bytes = 0;
  std::int64_t resident_extra_bytes = 0;
};

// Runs `pass` warmup + reps times; each repetition starts together on every rank and lasts as
// long as its slowest rank.
PassMeasurement measure(ComputeContext& context, Communicator& world, const BenchConfig& config,
                        const Mixer& mixer, const std::function<void()>& pass) {
  const Device device = config.mixer_options.device;
  for (int i = 0; i < config.warmup; ++i) {
    pass();
  }
  context.synchronize();
  const std::int64_t tracked_before = memory_usage(device).current_bytes;
  reset_peak_memory(device);
  const std::int64_t resident_before = resident_memory().current_bytes;
  const bool resident_reset = reset_resident_peak();
  std::vector<double> slowest;
  std::vector<double> compute;
  for (int rep = 0; rep < config.reps; ++rep) {
    world.barrier();
    WallTimer timer;
    pass();
    context.synchronize();
    const double seconds = timer.seconds();
    slowest.push_back(scalar_reduce(world, seconds, ReduceOp::max));
    compute.push_back(mixer.last_stats().compute_seconds);
  }
  PassMeasurement m;
  m.timing = summarize_timings(slowest);
  m.stats = mixer.last_stats();
  const double my_compute = summarize_timings(compute).median_s;
  m.compute_max_s = scalar_reduce(world, my_compute, ReduceOp::max);
  m.compute_min_s = scalar_reduce(world, my_compute, ReduceOp::min);
  m.peak_mem_bytes = static_cast<std::int64_t>(
      scalar_reduce(world, static_cast<double>(memory_usage(device).peak_bytes), ReduceOp::max));
  m.extra_mem_bytes = static_cast<std::int64_t>(scalar_reduce(
      world, static_cast<double>(memory_usage(device).peak_bytes - tracked_before), ReduceOp::max));
  const double resident =
      resident_reset ? std::max<double>(0, resident_memory().peak_bytes - resident_before) : -1;
  m.resident_extra_bytes =
      device == Device::cpu
          ? static_cast<std::int64_t>(scalar_reduce(world, resident, ReduceOp::max))
          : 0;
  m.stats.bytes_sent = static_cast<std::int64_t>(
      scalar_reduce(world, static_cast<double>(m.stats.bytes_sent), ReduceOp::max));
  m.stats.communication_seconds =
      scalar_reduce(world, m.stats.communication_seconds, ReduceOp::sum);
  m.stats.exposed_communication_seconds =
      scalar_reduce(world, m.stats.exposed_communication_seconds, ReduceOp::sum);
  return m;
}

// The relative error of this rank's output and input-gradient shards against one rank computing
// the whole sequence from the same global inputs (maximum over ranks).
double check_against_single_rank(ComputeContext& context, Communicator& world, Communicator& self,
                                 const BenchConfig& config, const SequenceLayout& layout,
                                 const std::vector<Tensor>& outputs,
                                 const std::vector<Tensor>& grad_inputs, bool backward) {
  const std::int64_t n = config.seq;
  MixerOptions single_options = config.mixer_options;
  const std::unique_ptr<Mixer> single = make_mixer(config.mixer, single_options);
  const std::vector<TensorSpec> input_specs = single->input_specs(n);
  const std::vector<TensorSpec> output_specs = single->output_specs(n);
  std::vector<Tensor> inputs;
  std::vector<Tensor> grad_outputs;
  for (std::size_t i = 0; i < input_specs.size(); ++i) {
    inputs.push_back(random_full(input_specs[i], config.seed, 1 + i));
  }
  for (std::size_t i = 0; i < output_specs.size(); ++i) {
    grad_outputs.push_back(random_full(output_specs[i], config.seed, 101 + i));
  }
  inputs = on_device(inputs, single_options);
  grad_outputs = on_device(grad_outputs, single_options);
  const SequenceLayout whole(LayoutKind::contiguous, n, 1);
  std::vector<Tensor> full_outputs = zero_shards(output_specs, whole, single_options);
  std::vector<Tensor> full_grads = zero_shards(input_specs, whole, single_options);
  ShardContext single_context{context, self, whole};
  single->forward(single_context, inputs, full_outputs);
  if (backward) {
    single->backward(single_context, grad_outputs, full_grads);
  }
  context.synchronize();
  double error = 0;
  const auto compare = [&](const Tensor& shard, const Tensor& full, int sequence_dim) {
    const Tensor expected =
        scatter_shard(full.to(Device::cpu).to(DType::f32), layout, world.rank(), sequence_dim);
    error = std::max(error, max_relative_error(shard.to(Device::cpu).to(DType::f32), expected));
  };
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    compare(outputs[i], full_outputs[i], output_specs[i].sequence_dim);
  }
  if (backward) {
    for (std::size_t i = 0; i < grad_inputs.size(); ++i) {
      compare(grad_inputs[i], full_grads[i], input_specs[i].sequence_dim);
    }
  }
  return scalar_reduce(world, error, ReduceOp::max);
}

void validate(const BenchConfig& config) {
  LONGSEQ_REQUIRE(config.seq > 0, "bench: --seq must be positive, got {}", config.seq);
  LONGSEQ_REQUIRE(config.reps > 0, "bench: --reps must be positive, got {}", config.reps);
  LONGSEQ_REQUIRE(config.warmup >= 0, "bench: --warmup must not be negative, got {}",
                  config.warmup);
  LONGSEQ_REQUIRE(config.pass == "fwd" || config.pass == "bwd" || config.pass == "both",
                  "bench: --pass must be fwd, bwd or both, got '{}'", config.pass);
  LONGSEQ_REQUIRE(config.mixer_options.device == Device::cpu || cuda_device_count() > 0,
                  "bench: --device cuda but no usable GPU ({})", cuda_unavailable_reason());
}

}  // namespace

std::vector<BenchResult> run_bench(ComputeContext& context, Communicator& world, Communicator& self,
                                   const BenchConfig& config, const Yardstick& yardstick) {
  validate(config);
  const SequenceLayout layout(parse_layout(config.layout), config.seq, world.size());
  const std::unique_ptr<Mixer> mixer = make_mixer(config.mixer, config.mixer_options);
  const std::vector<TensorSpec> input_specs = mixer->input_specs(config.seq);
  const std::vector<TensorSpec> output_specs = mixer->output_specs(config.seq);
  std::vector<Tensor> inputs;
  std::vector<Tensor> grad_outputs;
  for (std::size_t i = 0; i < input_specs.size(); ++i) {
    inputs.push_back(random_shard(input_specs[i], layout, world.rank(), config.seed, 1 + i));
  }
  for (std::size_t i = 0; i < output_specs.size(); ++i) {
    grad_outputs.push_back(
        random_shard(output_specs[i], layout, world.rank(), config.seed, 101 + i));
  }
  inputs = on_device(inputs, config.mixer_options);
  grad_outputs = on_device(grad_outputs, config.mixer_options);
  // Outputs are zeroed (touched) up front, so that the resident growth of a pass is its own.
  const std::vector<Tensor> outputs = zero_shards(output_specs, layout, config.mixer_options);
  const std::vector<Tensor> grad_inputs = zero_shards(input_specs, layout, config.mixer_options);
  ShardContext shard_context{context, world, layout};

  std::vector<BenchResult> results;
  const auto record = [&](const std::string& pass, const PassMeasurement& m) {
    BenchResult result;
    result.config = config;
    result.pass = pass;
    result.ranks = world.size();
    result.flop_convention = mixer->flop_convention();
    result.median_s = m.timing.median_s;
    result.spread = m.timing.spread;
    result.gflops = m.stats.flops / m.timing.median_s * 1e-9;
    result.yardstick = yardstick;
    result.peak_mem_bytes = m.peak_mem_bytes;
    result.extra_mem_bytes = m.extra_mem_bytes;
    result.resident_extra_bytes = m.resident_extra_bytes;
    result.bytes_sent = m.stats.bytes_sent;
    // Exposed and total times are maxima over ranks (possibly of different ranks), so the ratio
    // can step past [0, 1] by a rounding error.
    result.overlap = m.stats.communication_seconds > 0
                         ? std::clamp(1.0 - m.stats.exposed_communication_seconds /
                                                m.stats.communication_seconds,
                                      0.0, 1.0)
                         : 1.0;
    result.compute_max_s = m.compute_max_s;
    result.compute_min_s = m.compute_min_s;
    results.push_back(result);
  };

  const auto forward = [&] { mixer->forward(shard_context, inputs, outputs); };
  if (config.pass == "bwd") {
    forward();  // backward needs the forward's saved state; it is not measured
  } else {
    record("fwd", measure(context, world, config, *mixer, forward));
  }
  if (config.pass != "fwd") {
    record("bwd", measure(context, world, config, *mixer,
                          [&] { mixer->backward(shard_context, grad_outputs, grad_inputs); }));
  }

  if (config.check) {
    const bool backward = config.pass != "fwd";
    const double error = check_against_single_rank(context, world, self, config, layout, outputs,
                                                   grad_inputs, backward);
    for (BenchResult& result : results) {
      result.max_rel_err = error;
    }
  }
  return results;
}

}  // namespace longseq
