#include "models/mixers/rpe_fft.h"

#include <string>

#include "kernels/random.h"
#include "kernels/rpe_attention.h"
#include "models/mixers/mixer_support.h"
#include "parallel/rpe_attention_parallel.h"

namespace longseq {

namespace {

// The random stream of b's initial values (MixerOptions::seed picks the seed).
constexpr std::uint64_t kBiasStream = 0x727065;
// b starts as small normal noise: near plain kernelized attention, yet with non-trivial weights.
constexpr float kBiasInitStddev = 0.25f;

class RpeFftMixer final : public Mixer {
 public:
  explicit RpeFftMixer(const MixerOptions& options) : options_(options) {
    config_.causal = options.causal;
    require_positive_dims("rpe_fft", options);
    require_kv_heads_equal_heads("rpe_fft", options);
    LONGSEQ_REQUIRE(options.dtype == DType::f32, "[rpe_fft] computes in fp32 only, got {}",
                    dtype_name(options.dtype));
    // The exact causal split (kernels/rpe_attention.h) has no CUDA kernels yet.
    LONGSEQ_REQUIRE(!options.causal || options.device == Device::cpu,
                    "[rpe_fft] causal runs on the CPU only for now, got device {}",
                    device_name(options.device));
  }

  [[nodiscard]] std::string name() const override { return "rpe_fft"; }

  [[nodiscard]] std::vector<TensorSpec> input_specs(std::int64_t length) const override {
    return attention_input_specs(options_, length);
  }

  [[nodiscard]] std::vector<TensorSpec> output_specs(std::int64_t length) const override {
    return attention_output_specs(options_, length);
  }

  [[nodiscard]] std::vector<TensorSpec> parameter_specs(std::int64_t length) const override {
    return {{"b", {options_.heads, 2 * length - 1}, -1, DType::f32}};
  }

  [[nodiscard]] std::vector<Tensor> parameters() const override {
    return b_.defined() ? std::vector<Tensor>{b_} : std::vector<Tensor>{};
  }

  [[nodiscard]] std::vector<Tensor> parameter_gradients() const override {
    return grad_b_.defined() ? std::vector<Tensor>{grad_b_} : std::vector<Tensor>{};
  }

  [[nodiscard]] std::string flop_convention() const override {
    return "FFT convention of kernels/toeplitz.h (5 L log2 L per complex FFT of length L, real "
           "FFTs half, 6 per complex product) for the Toeplitz products of the Dk(Dv+1) "
           "feature-value columns of every (query, key) block pair, plus 2 per multiply-add of "
           "the feature maps and contractions: forward 2 Dk(Dv+1)(Nq+Nk), backward 6 "
           "Dk(Dv+1)(Nq+Nk) "
           "with the forward product recomputed; counted for the whole sequence as one block";
  }

  void forward(ShardContext& context, std::span<const Tensor> inputs,
               std::span<const Tensor> outputs) override {
    LONGSEQ_CHECK(inputs.size() == 3 && outputs.size() == 1,
                  "[rpe_fft] takes q, k, v and gives out");
    q_ = inputs[0];
    k_ = inputs[1];
    v_ = inputs[2];
    ensure_parameters(context);
    DistributedAttentionStats stats;
    if (whole_sequence(context.layout)) {
      rpe_attention_forward(context.compute, q_, k_, v_, b_, options(), outputs[0]);
    } else {
      require_cpu();
      distributed_rpe_attention_forward(context.compute, context.sequence_group, context.layout,
                                        config_, q_, k_, v_, b_, outputs[0], &stats);
    }
    stats_ = mixer_stats_of(stats, forward_flops(context.layout.global_length()));
  }

  void backward(ShardContext& context, std::span<const Tensor> grad_outputs,
                std::span<const Tensor> grad_inputs) override {
    LONGSEQ_CHECK(grad_outputs.size() == 1 && grad_inputs.size() == 3,
                  "[rpe_fft] takes the gradient of out and gives those of q, k, v");
    LONGSEQ_CHECK(q_.defined() && b_.defined(), "[rpe_fft] backward before forward");
    DistributedAttentionStats stats;
    if (whole_sequence(context.layout)) {
      rpe_attention_backward(context.compute, q_, k_, v_, b_, grad_outputs[0], options(),
                             grad_inputs[0], grad_inputs[1], grad_inputs[2], grad_b_);
    } else {
      require_cpu();
      distributed_rpe_attention_backward(context.compute, context.sequence_group, context.layout,
                                         config_, q_, k_, v_, b_, grad_outputs[0], grad_inputs[0],
                                         grad_inputs[1], grad_inputs[2], grad_b_, &stats);
    }
    stats_ = mixer_stats_of(stats, backward_flops(context.layout.global_length()));
  }

  [[nodiscard]] MixerStats last_stats() const override { return stats_; }

  [[nodiscard]] double forward_flops(std::int64_t length) const override {
    return rpe_attention_block_forward_flops(options_.batch, options_.heads, length, length,
                                             options_.head_dim, options_.head_dim);
  }

  [[nodiscard]] double backward_flops(std::int64_t length) const override {
    return rpe_attention_block_backward_flops(options_.batch, options_.heads, length, length,
                                              options_.head_dim, options_.head_dim);
  }

 private:
  [[nodiscard]] RpeAttentionOptions options() const {
    RpeAttentionOptions options;
    options.causal = config_.causal;
    options.eps = config_.eps;
    return options;
  }

  // b for the layout's global length: drawn at the first forward (and drawn afresh if the length
  // changes, since b has one entry per relative offset).
  void ensure_parameters(ShardContext& context) {
    const Shape shape = parameter_specs(context.layout.global_length())[0].shape;
    if (b_.defined() && b_.shape() == shape) {
      return;
    }
    b_ = Tensor::empty(shape, DType::f32, options_.device);
    fill_normal(context.compute, b_, {options_.seed, kBiasStream}, 0.0f, kBiasInitStddev);
    grad_b_ = Tensor::zeros(shape, DType::f32, options_.device);
  }

  // One rank holding every position in order and no padding: the one-call kernels (any device).
  static bool whole_sequence(const SequenceLayout& layout) {
    return layout.ranks() == 1 && layout.shard_length() == layout.global_length();
  }

  void require_cpu() const {
    LONGSEQ_REQUIRE(options_.device == Device::cpu,
                    "[rpe_fft] runs on CUDA on one rank only: the ring exchanges host buffers");
  }

  MixerOptions options_;
  RpeAttentionParallelConfig config_;
  MixerStats stats_;
  Tensor b_;       // (H, 2N - 1)
  Tensor grad_b_;  // like b_
  // Saved by forward for backward: this rank's shards (the numerators are recomputed).
  Tensor q_, k_, v_;
};

}  // namespace

std::unique_ptr<Mixer> make_rpe_fft_mixer(const MixerOptions& options) {
  return std::make_unique<RpeFftMixer>(options);
}

}  // namespace longseq
