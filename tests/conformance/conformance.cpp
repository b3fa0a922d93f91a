#include "tests/conformance/conformance.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <limits>

#include "models/mixer_inputs.h"
#include "models/mixer_registry.h"
#include "runtime/error.h"

namespace longseq::conformance {

namespace {

// The strategies a mixer offers for this configuration, or {""} (its default) when it has none or
// rejects the configuration: the test then builds it again and reports the rejection as a skip.
std::vector<std::string> strategies_of(const MixerCase& c) {
  try {
    std::vector<std::string> names = make_mixer(c.mixer, mixer_options(c))->strategies();
    return names.empty() ? std::vector<std::string>{""} : names;
  } catch (const UserError&) {
    return {""};
  }
}

std::string identifier(const std::string& text) {
  std::string name = text;
  std::replace_if(
      name.begin(), name.end(), [](unsigned char ch) { return std::isalnum(ch) == 0; }, '_');
  return name;
}

// A CPU tensor of `shape` holding `value` everywhere, converted to the mixer's dtype and device.
Tensor filled(const Shape& shape, float value, const MixerOptions& options) {
  const Tensor tensor = Tensor::empty(shape, DType::f32);
  std::fill_n(tensor.data<float>(), tensor.numel(), value);
  return tensor.to(options.dtype).to(options.device);
}

std::vector<Tensor> nan_shards(const std::vector<TensorSpec>& specs, const SequenceLayout& layout,
                               const MixerOptions& options) {
  std::vector<Tensor> tensors;
  for (const TensorSpec& spec : specs) {
    Shape shape = spec.shape;
    shape[spec.sequence_dim] = layout.shard_length();
    tensors.push_back(filled(shape, std::numeric_limits<float>::quiet_NaN(), options));
  }
  return tensors;
}

std::vector<Tensor> on_cpu(const std::vector<Tensor>& tensors) {
  std::vector<Tensor> copies;
  for (const Tensor& tensor : tensors) {
    copies.push_back(tensor.to(Device::cpu).to(DType::f32).contiguous().clone());
  }
  return copies;
}

}  // namespace

std::vector<MixerCase> mixer_cases(const CaseSelection& selection) {
  std::vector<MixerCase> cases;
  for (const std::string& mixer : registered_mixers()) {
    for (const bool causal : {false, true}) {
      if (selection.causal_only && !causal) {
        continue;
      }
      for (const ProblemSize& size : selection.sizes) {
        std::vector<std::string> strategies =
            strategies_of({mixer, causal, "", LayoutKind::contiguous, size});
        if (!selection.every_strategy) {
          strategies.resize(1);
        }
        for (const std::string& strategy : strategies) {
          for (const LayoutKind layout : selection.layouts) {
            cases.push_back({mixer, causal, strategy, layout, size});
          }
        }
      }
    }
  }
  return cases;
}

std::string case_name(const testing::TestParamInfo<MixerCase>& info) {
  const MixerCase& c = info.param;
  return identifier(c.mixer) + (c.causal ? "_causal_" : "_full_") +
         (c.strategy.empty() ? "default" : identifier(c.strategy)) + "_" +
         std::string(layout_name(c.layout)) + "_N" + std::to_string(c.size.length) + "_B" +
         std::to_string(c.size.batch) + "H" + std::to_string(c.size.heads) +
         (c.size.kv_heads > 0 ? "Hkv" + std::to_string(c.size.kv_heads) : "") + "D" +
         std::to_string(c.size.head_dim);
}

void PrintTo(const MixerCase& c, std::ostream* os) {
  *os << c.mixer << (c.causal ? " causal" : " full") << " strategy "
      << (c.strategy.empty() ? "default" : c.strategy) << " " << layout_name(c.layout)
      << " N=" << c.size.length << " B=" << c.size.batch << " H=" << c.size.heads
      << " Hkv=" << c.size.kv_heads << " D=" << c.size.head_dim;
}

MixerOptions mixer_options(const MixerCase& c, Device device) {
  MixerOptions options;
  options.batch = c.size.batch;
  options.heads = c.size.heads;
  options.head_dim = c.size.head_dim;
  options.kv_heads = c.size.kv_heads;
  options.causal = c.causal;
  if (!c.strategy.empty()) {
    options.strategy = c.strategy;
  }
  options.dtype = DType::f32;
  options.device = device;
  return options;
}

std::optional<std::string> rejection(const std::function<void()>& action) {
  try {
    action();
  } catch (const UserError& error) {
    return std::string(error.what());
  }
  return std::nullopt;
}

Problem random_problem(const Mixer& mixer, const MixerOptions& options,
                       const SequenceLayout& layout, int rank, std::uint64_t seed) {
  const std::int64_t length = layout.global_length();
  Problem problem;
  const std::vector<TensorSpec> input_specs = mixer.input_specs(length);
  for (std::size_t i = 0; i < input_specs.size(); ++i) {
    problem.inputs.push_back(random_shard(input_specs[i], layout, rank, seed, 1 + i)
                                 .to(options.dtype)
                                 .to(options.device));
  }
  const std::vector<TensorSpec> output_specs = mixer.output_specs(length);
  for (std::size_t i = 0; i < output_specs.size(); ++i) {
    problem.grad_outputs.push_back(random_shard(output_specs[i], layout, rank, seed, 101 + i)
                                       .to(options.dtype)
                                       .to(options.device));
  }
  return problem;
}

std::vector<Tensor> run_forward(Mixer& mixer, ShardContext& context,
                                const std::vector<Tensor>& inputs, const MixerOptions& options) {
  const std::vector<Tensor> outputs =
      nan_shards(mixer.output_specs(context.layout.global_length()), context.layout, options);
  mixer.forward(context, inputs, outputs);
  context.compute.synchronize();
  return on_cpu(outputs);
}

PassResult run_forward_backward(Mixer& mixer, ShardContext& context, const Problem& problem,
                                const MixerOptions& options) {
  PassResult result;
  result.outputs = run_forward(mixer, context, problem.inputs, options);
  const std::vector<Tensor> grad_inputs =
      nan_shards(mixer.input_specs(context.layout.global_length()), context.layout, options);
  mixer.backward(context, problem.grad_outputs, grad_inputs);
  context.compute.synchronize();
  result.grad_inputs = on_cpu(grad_inputs);
  result.grad_parameters = on_cpu(mixer.parameter_gradients());
  return result;
}

PassResult single_rank_result(Mixer& mixer, ComputeContext& compute, Communicator& self,
                              const MixerOptions& options, std::int64_t length) {
  const SequenceLayout whole(LayoutKind::contiguous, length, 1);
  ShardContext context{compute, self, whole};
  return run_forward_backward(mixer, context, random_problem(mixer, options, whole, 0, kSeed),
                              options);
}

void for_each_element(const Shape& shape, int sequence_dim, const SequenceLayout& layout, int rank,
                      const std::function<void(std::int64_t, std::int64_t)>& visit) {
  std::int64_t outer = 1;
  for (int d = 0; d < sequence_dim; ++d) outer *= shape[d];
  std::int64_t inner = 1;
  for (int d = sequence_dim + 1; d < static_cast<int>(shape.size()); ++d) inner *= shape[d];
  const std::int64_t positions = shape[sequence_dim];
  for (std::int64_t o = 0; o < outer; ++o) {
    for (std::int64_t local = 0; local < positions; ++local) {
      const std::int64_t global = layout.global_position(rank, local);
      for (std::int64_t i = 0; i < inner; ++i) {
        visit(global, (o * positions + local) * inner + i);
      }
    }
  }
}

double shard_relative_error(const Tensor& actual, const Tensor& expected, int sequence_dim,
                            const SequenceLayout& layout, int rank, PositionRange range) {
  EXPECT_EQ(actual.shape(), expected.shape());
  const float* a = actual.data<float>();
  const float* e = expected.data<float>();
  double max_error = 0.0;
  double max_reference = 0.0;
  for_each_element(
      actual.shape(), sequence_dim, layout, rank, [&](std::int64_t global, std::int64_t at) {
        if (global < range.begin || global >= range.end || global >= layout.global_length()) {
          return;
        }
        const double error = std::abs(static_cast<double>(a[at]) - e[at]);
        // A NaN (an element never written) must fail, and max() would drop it.
        max_error = std::isnan(error) ? std::numeric_limits<double>::infinity()
                                      : std::max(max_error, error);
        max_reference = std::max(max_reference, std::abs(static_cast<double>(e[at])));
      });
  return max_reference > 0.0 ? max_error / max_reference : max_error;
}

std::int64_t nonzero_padding(const Tensor& shard, int sequence_dim, const SequenceLayout& layout,
                             int rank) {
  const float* values = shard.data<float>();
  std::int64_t count = 0;
  for_each_element(shard.shape(), sequence_dim, layout, rank,
                   [&](std::int64_t global, std::int64_t at) {
                     // Written as a negation so that NaN counts as non-zero.
                     if (global >= layout.global_length() && !(values[at] == 0.0f)) {
                       ++count;
                     }
                   });
  return count;
}

Tensor splice_after(const Tensor& base, const Tensor& replacement, std::int64_t last,
                    int sequence_dim, const SequenceLayout& layout, int rank) {
  const Tensor spliced = base.contiguous().clone();
  const Tensor source = replacement.contiguous();
  float* values = spliced.data<float>();
  const float* replacements = source.data<float>();
  for_each_element(spliced.shape(), sequence_dim, layout, rank,
                   [&](std::int64_t global, std::int64_t at) {
                     if (global > last) {
                       values[at] = replacements[at];
                     }
                   });
  return spliced;
}

double relative_error(const Tensor& actual, const Tensor& expected) {
  EXPECT_EQ(actual.shape(), expected.shape());
  const std::vector<double> a = to_double_vector(actual);
  const std::vector<double> e = to_double_vector(expected);
  double max_error = 0.0;
  double max_reference = 0.0;
  for (std::size_t i = 0; i < a.size() && i < e.size(); ++i) {
    const double error = std::abs(a[i] - e[i]);
    max_error = std::isnan(error) ? std::numeric_limits<double>::infinity()
                                  : std::max(max_error, error);
    max_reference = std::max(max_reference, std::abs(e[i]));
  }
  return max_reference > 0.0 ? max_error / max_reference : max_error;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.bytes()) == 0;
}

}  // namespace longseq::conformance
