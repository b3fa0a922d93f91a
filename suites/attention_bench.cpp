#include "suites/attention_bench.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "kernels/attention.h"
#include "kernels/reference.h"
#include "runtime/memory.h"
#include "runtime/philox.h"
#include "runtime/process_memory.h"
#include "runtime/tensor.h"
#include "runtime/timer.h"

namespace longseq {

namespace {

using ForwardFunction = void (*)(ComputeContext&, const Tensor&, const Tensor&, const Tensor&,
                                 const AttentionOptions&, const Tensor&, const Tensor&);
using BackwardFunction = void (*)(ComputeContext&, const Tensor&, const Tensor&, const Tensor&,
                                  const Tensor&, const Tensor&, const Tensor&,
                                  const AttentionOptions&, const Tensor&, const Tensor&,
                                  const Tensor&);

struct AttentionMixer {
  const char* name;
  ForwardFunction forward;
  BackwardFunction backward;
};

// How to extend: a new exact-attention kernel is one more row.
constexpr AttentionMixer kMixers[] = {
    {"softmax", softmax_attention_forward, softmax_attention_backward},
    {"flash", flash_attention_forward, flash_attention_backward},
};

const AttentionMixer& find_mixer(const std::string& name) {
  for (const AttentionMixer& mixer : kMixers) {
    if (name == mixer.name) {
      return mixer;
    }
  }
  throw UserError(fmt::format("bench: unknown mixer '{}' (known: softmax, flash)", name));
}

// Uniform in [-1, 1) from the seeded stream: the same inputs on every device and every run.
Tensor random_input(const Shape& shape, std::uint64_t seed, std::uint64_t stream, DType dtype,
                    Device device) {
  Tensor values = Tensor::empty(shape, DType::f32);
  float* data = values.data<float>();
  for (std::int64_t i = 0; i < values.numel(); ++i) {
    data[i] = 2.0f * random_uniform(seed, stream, static_cast<std::uint64_t>(i)) - 1.0f;
  }
  return values.to(dtype).to(device);
}

void validate(const AttentionBenchConfig& config) {
  find_mixer(config.mixer);
  LONGSEQ_REQUIRE(config.seq > 0, "bench: --seq must be positive, got {}", config.seq);
  LONGSEQ_REQUIRE(config.batch > 0, "bench: --batch must be positive, got {}", config.batch);
  LONGSEQ_REQUIRE(config.heads > 0, "bench: --heads must be positive, got {}", config.heads);
  LONGSEQ_REQUIRE(config.head_dim > 0, "bench: --head-dim must be positive, got {}",
                  config.head_dim);
  LONGSEQ_REQUIRE(config.reps > 0, "bench: --reps must be positive, got {}", config.reps);
  LONGSEQ_REQUIRE(config.pass == "fwd" || config.pass == "bwd" || config.pass == "both",
                  "bench: --pass must be fwd, bwd or both, got '{}'", config.pass);
  LONGSEQ_REQUIRE(
      config.layout == "contiguous" || config.layout == "zigzag" || config.layout == "striped",
      "bench: --layout must be contiguous, zigzag or striped, got '{}'", config.layout);
  LONGSEQ_REQUIRE(
      config.strategy == "ring" || config.strategy == "alltoall" || config.strategy == "allgather",
      "bench: --strategy must be ring, alltoall or allgather, got '{}'", config.strategy);
  const std::int64_t kv_heads = config.kv_heads > 0 ? config.kv_heads : config.heads;
  LONGSEQ_REQUIRE(config.heads % kv_heads == 0,
                  "bench: --heads {} is not a multiple of --kv-heads {}", config.heads, kv_heads);
  LONGSEQ_REQUIRE(config.device == Device::cpu || cuda_device_count() > 0,
                  "bench: --device cuda but no usable GPU ({})", cuda_unavailable_reason());
}

double max_relative_error(const Tensor& value, const Tensor& reference) {
  const std::vector<double> x = to_double_vector(value);
  const std::vector<double> r = to_double_vector(reference);
  double max_difference = 0;
  double max_reference = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (std::isinf(r[i]) && x[i] == r[i]) {
      continue;  // both -inf: a row that sees no key
    }
    max_difference = std::max(max_difference, std::abs(x[i] - r[i]));
    max_reference = std::max(max_reference, std::abs(r[i]));
  }
  return max_reference > 0 ? max_difference / max_reference : max_difference;
}

// The first batch entry and the query heads of the first key/value head: checking one
// independent slice against the double-precision reference keeps --check affordable at long N.
Tensor check_slice(const Tensor& tensor, std::int64_t heads) {
  return tensor.slice(0, 0, 1).slice(1, 0, heads).to(Device::cpu).to(DType::f32).contiguous();
}

struct Measurement {
  TimingSummary timing;
  std::int64_t peak_mem_bytes = 0;
  std::int64_t extra_mem_bytes = 0;
  std::int64_t resident_extra_bytes = 0;
};

Measurement measure(ComputeContext& context, const AttentionBenchConfig& config,
                    const std::function<void()>& run) {
  for (int i = 0; i < config.warmup; ++i) {
    run();
  }
  context.synchronize();
  const std::int64_t tracked_before = memory_usage(config.device).current_bytes;
  reset_peak_memory(config.device);
  const std::int64_t resident_before = resident_memory().current_bytes;
  const bool resident_peak_reset = reset_resident_peak();
  std::vector<double> seconds;
  for (int rep = 0; rep < config.reps; ++rep) {
    WallTimer timer;
    run();
    context.synchronize();
    seconds.push_back(timer.seconds());
  }
  Measurement measurement;
  measurement.timing = summarize_timings(seconds);
  measurement.peak_mem_bytes = memory_usage(config.device).peak_bytes;
  measurement.extra_mem_bytes = measurement.peak_mem_bytes - tracked_before;
  measurement.resident_extra_bytes =
      resident_peak_reset
          ? std::max<std::int64_t>(0, resident_memory().peak_bytes - resident_before)
          : -1;
  return measurement;
}

}  // namespace

const std::vector<std::string>& attention_bench_mixers() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> list;
    for (const AttentionMixer& mixer : kMixers) {
      list.emplace_back(mixer.name);
    }
    return list;
  }();
  return names;
}

const char* attention_flop_convention() {
  return "attention forward 4*N^2*D FLOPs per (batch, head), halved when causal; backward 2.5x "
         "forward";
}

std::vector<BenchResult> run_attention_bench(ComputeContext& context,
                                             const AttentionBenchConfig& config,
                                             const Yardstick& yardstick) {
  validate(config);
  const AttentionMixer& mixer = find_mixer(config.mixer);
  const std::int64_t kv_heads = config.kv_heads > 0 ? config.kv_heads : config.heads;
  const Shape q_shape{config.batch, config.heads, config.seq, config.head_dim};
  const Shape kv_shape{config.batch, kv_heads, config.seq, config.head_dim};
  const Device device = config.device;

  const Tensor q = random_input(q_shape, config.seed, 1, config.dtype, device);
  const Tensor k = random_input(kv_shape, config.seed, 2, config.dtype, device);
  const Tensor v = random_input(kv_shape, config.seed, 3, config.dtype, device);
  // Outputs are zeroed (touched) up front, so that the resident-set growth measured during a pass
  // is the pass's own working memory, not the first touch of its outputs.
  const Tensor out = Tensor::zeros(q_shape, config.dtype, device);
  const Tensor lse = Tensor::zeros({config.batch, config.heads, config.seq}, DType::f32, device);
  AttentionOptions options;
  options.causal = config.causal;
  const AttentionShape shape = attention_shape("bench", q, k, v, options);

  std::vector<BenchResult> results;
  auto record = [&](const std::string& pass, const Measurement& measurement, double flops) {
    BenchResult result;
    result.config = config;
    result.pass = pass;
    result.median_s = measurement.timing.median_s;
    result.spread = measurement.timing.spread;
    result.gflops = flops / measurement.timing.median_s * 1e-9;
    result.yardstick = yardstick;
    result.peak_mem_bytes = measurement.peak_mem_bytes;
    result.extra_mem_bytes = measurement.extra_mem_bytes;
    result.resident_extra_bytes = device == Device::cpu ? measurement.resident_extra_bytes : 0;
    results.push_back(result);
  };

  const auto run_forward = [&] { mixer.forward(context, q, k, v, options, out, lse); };
  if (config.pass == "bwd") {
    run_forward();  // backward needs the forward's out and lse; it is not measured
  } else {
    record("fwd", measure(context, config, run_forward), attention_forward_flops(shape));
  }

  const Tensor grad_out = random_input(q_shape, config.seed, 4, config.dtype, device);
  const Tensor grad_q = Tensor::zeros(q_shape, config.dtype, device);
  const Tensor grad_k = Tensor::zeros(kv_shape, config.dtype, device);
  const Tensor grad_v = Tensor::zeros(kv_shape, config.dtype, device);
  if (config.pass != "fwd") {
    const Measurement backward = measure(context, config, [&] {
      mixer.backward(context, q, k, v, out, lse, grad_out, options, grad_q, grad_k, grad_v);
    });
    record("bwd", backward, attention_backward_flops(shape));
  }

  if (config.check) {
    if (config.pass == "fwd") {
      mixer.backward(context, q, k, v, out, lse, grad_out, options, grad_q, grad_k, grad_v);
    }
    context.synchronize();
    const std::int64_t group = config.heads / kv_heads;
    const Tensor q_slice = check_slice(q, group);
    const Tensor k_slice = check_slice(k, 1);
    const Tensor v_slice = check_slice(v, 1);
    const Tensor ref_out = Tensor::empty(q_slice.shape(), DType::f64);
    const Tensor ref_lse = Tensor::empty({1, group, config.seq}, DType::f64);
    reference::attention_forward(q_slice, k_slice, v_slice, options, ref_out, ref_lse);
    const double forward_error = std::max(max_relative_error(check_slice(out, group), ref_out),
                                          max_relative_error(check_slice(lse, group), ref_lse));
    const Tensor ref_grad_q = Tensor::empty(q_slice.shape(), DType::f64);
    const Tensor ref_grad_k = Tensor::empty(k_slice.shape(), DType::f64);
    const Tensor ref_grad_v = Tensor::empty(v_slice.shape(), DType::f64);
    reference::attention_backward(q_slice, k_slice, v_slice, check_slice(grad_out, group), options,
                                  ref_grad_q, ref_grad_k, ref_grad_v);
    const double backward_error =
        std::max({max_relative_error(check_slice(grad_q, group), ref_grad_q),
                  max_relative_error(check_slice(grad_k, 1), ref_grad_k),
                  max_relative_error(check_slice(grad_v, 1), ref_grad_v)});
    for (BenchResult& result : results) {
      result.max_rel_err = result.pass == "fwd" ? forward_error : backward_error;
    }
  }
  return results;
}

}  // namespace longseq
