#include "models/mixers/gss.h"

#include <optional>
#include <string>

#include "models/gss_block.h"
#include "models/local_attention_block.h"
#include "models/mixers/mixer_support.h"
#include "runtime/error.h"
#include "runtime/timer.h"

namespace longseq {

namespace {

// MixerOptions::state_size's default: left there, the paper's 512 modes are used.
constexpr std::int64_t kDefaultStateSize = 64;
constexpr std::int64_t kPaperStateSize = 512;

const MixerOptions& checked(const MixerOptions& options) {
  LONGSEQ_REQUIRE(options.causal, "[gss] is causal: pass --causal");
  require_positive_dims("gss", options);
  LONGSEQ_REQUIRE(options.device == Device::cpu && options.dtype == DType::f32,
                  "[gss] runs in fp32 on the CPU only, not {} on {}", dtype_name(options.dtype),
                  device_name(options.device));
  LONGSEQ_REQUIRE(options.state_size > 0, "[gss] the state size must be positive, got {}",
                  options.state_size);
  LONGSEQ_REQUIRE(options.local_chunk >= 0,
                  "[gss] the local attention chunk must be 0 (none) or positive, got {}",
                  options.local_chunk);
  return options;
}

void add_stats(MixerStats& into, const DistributedAttentionStats& from) {
  into.communication_seconds += from.communication_seconds;
  into.exposed_communication_seconds += from.exposed_communication_seconds;
}

class GssMixer final : public Mixer {
 public:
  explicit GssMixer(const MixerOptions& options)
      : options_(checked(options)),
        block_(GssBlockShape::of(
                   options.batch, options.heads * options.head_dim,
                   options.state_size == kDefaultStateSize ? kPaperStateSize : options.state_size),
               options.seed, state_scan_strategy_of("gss", options.strategy)) {
    if (options.local_chunk > 0) {
      attention_.emplace(LocalAttentionBlockShape{options.batch, options.heads, options.head_dim,
                                                  options.local_chunk},
                         options.seed);
    }
  }

  [[nodiscard]] std::string name() const override { return "gss"; }

  [[nodiscard]] std::vector<std::string> strategies() const override {
    return state_scan_strategy_names();
  }

  [[nodiscard]] std::vector<TensorSpec> input_specs(std::int64_t length) const override {
    return {{"x", {options_.batch, length, width()}, 1, options_.dtype}};
  }

  [[nodiscard]] std::vector<TensorSpec> output_specs(std::int64_t length) const override {
    return {{"out", {options_.batch, length, width()}, 1, options_.dtype}};
  }

  [[nodiscard]] std::string flop_convention() const override {
    const GssBlockShape& shape = block_.shape();
    std::string convention = LONGSEQ_FORMAT(
        "GSS block (E = {}, F = {}, H = {}, DSS modes {}) over the global sequence: matrix "
        "products 2mnk each, backward twice forward; the DSS layer by its own convention "
        "(kernels/diagonal_ssm.h: Toeplitz/FFT convolution plus 8 L M H kernel generation, "
        "complex multiply-add = 8); norms, GELUs and gates not counted",
        shape.width, shape.expanded, shape.hidden, shape.modes);
    if (attention_) {
      convention += LONGSEQ_FORMAT(
          "; local attention block (chunk {}): projections 2mnk, attention 4 Nq Nk D per (batch, "
          "head) halved for causal, summed over the chunks, backward 2.5x",
          options_.local_chunk);
    }
    return convention;
  }

  void forward(ShardContext& context, std::span<const Tensor> inputs,
               std::span<const Tensor> outputs) override {
    LONGSEQ_CHECK(inputs.size() == 1 && outputs.size() == 1, "[gss] takes x and gives out");
    const Measure measure(context, stats_);
    const std::int64_t length = context.layout.global_length();
    if (!attention_) {
      block_.forward(context, inputs[0], outputs[0]);
      add_stats(stats_, block_.last_stats());
      stats_.flops = forward_flops(length);
      return;
    }
    between_ = Tensor::empty(inputs[0].shape(), DType::f32);
    block_.forward(context, inputs[0], between_);
    attention_->forward(context, between_, outputs[0]);
    add_stats(stats_, block_.last_stats());
    add_stats(stats_, attention_->last_stats());
    stats_.flops = forward_flops(length);
  }

  void backward(ShardContext& context, std::span<const Tensor> grad_outputs,
                std::span<const Tensor> grad_inputs) override {
    LONGSEQ_CHECK(grad_outputs.size() == 1 && grad_inputs.size() == 1,
                  "[gss] takes the gradient of out and gives that of x");
    const Measure measure(context, stats_);
    const std::int64_t length = context.layout.global_length();
    if (!attention_) {
      block_.backward(context, grad_outputs[0], grad_inputs[0]);
      add_stats(stats_, block_.last_stats());
      stats_.flops = backward_flops(length);
      return;
    }
    LONGSEQ_CHECK(between_.defined(), "[gss] backward before forward");
    const Tensor grad_between = Tensor::empty(between_.shape(), DType::f32);
    attention_->backward(context, grad_outputs[0], grad_between);
    block_.backward(context, grad_between, grad_inputs[0]);
    add_stats(stats_, block_.last_stats());
    add_stats(stats_, attention_->last_stats());
    stats_.flops = backward_flops(length);
  }

  [[nodiscard]] MixerStats last_stats() const override { return stats_; }

  [[nodiscard]] double forward_flops(std::int64_t length) const override {
    return block_.forward_flops(length) + (attention_ ? attention_->forward_flops(length) : 0.0);
  }

  [[nodiscard]] double backward_flops(std::int64_t length) const override {
    return block_.backward_flops(length) + (attention_ ? attention_->backward_flops(length) : 0.0);
  }

  [[nodiscard]] std::vector<TensorSpec> parameter_specs(std::int64_t /*length*/) const override {
    return joined(&ParameterSet::specs);
  }
  [[nodiscard]] std::vector<Tensor> parameters() const override {
    return joined(&ParameterSet::values);
  }
  [[nodiscard]] std::vector<Tensor> parameter_gradients() const override {
    return joined(&ParameterSet::gradients);
  }

 private:
  // Resets the stats at the start of a call; at its end, the bytes this rank sent and the wall
  // time not spent waiting for communication.
  class Measure {
   public:
    Measure(const ShardContext& context, MixerStats& stats)
        : communicator_(context.sequence_group),
          stats_(stats),
          bytes_before_(communicator_.bytes_sent()) {
      stats_ = {};
    }
    ~Measure() {
      stats_.bytes_sent = communicator_.bytes_sent() - bytes_before_;
      stats_.compute_seconds = timer_.seconds() - stats_.exposed_communication_seconds;
    }
    Measure(const Measure&) = delete;
    Measure& operator=(const Measure&) = delete;

   private:
    const Communicator& communicator_;
    MixerStats& stats_;
    std::int64_t bytes_before_;
    WallTimer timer_;
  };

  [[nodiscard]] std::int64_t width() const { return options_.heads * options_.head_dim; }

  // The GSS block's list, then the attention block's.
  template <typename T>
  [[nodiscard]] std::vector<T> joined(const std::vector<T>& (ParameterSet::*part)() const) const {
    std::vector<T> list = (block_.parameters().*part)();
    if (attention_) {
      const std::vector<T>& more = (attention_->parameters().*part)();
      list.insert(list.end(), more.begin(), more.end());
    }
    return list;
  }

  MixerOptions options_;
  GssBlock block_;
  std::optional<LocalAttentionBlock> attention_;
  MixerStats stats_;
  // The GSS block's output, the attention block's input (hybrid only).
  Tensor between_;
};

}  // namespace

std::unique_ptr<Mixer> make_gss_mixer(const MixerOptions& options) {
  return std::make_unique<GssMixer>(options);
}

}  // namespace longseq
