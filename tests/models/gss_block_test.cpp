// The GSS block and its hybrid with chunked local attention, through the `gss` mixer:
//   - gradients of the input and of every parameter against central finite differences of
//     loss = sum(out * W), for the block alone and for the hybrid (chunks straddling nothing and
//     chunks of one position);
//   - identities: W_o = 0 makes the block the identity (the shortcut), and with the attention
//     block's W_o = 0 too the hybrid; a chunk of one position attends each token to itself only;
//   - widths and state size as documented; causal = false rejected;
//   - the distributed hybrid (every layout) equals the single-rank one in outputs, input gradients
//     and parameter gradients: meaningful under mpirun -np 2..4, trivially true at -np 1.
#include "models/gss_block.h"

#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "models/mixer_inputs.h"
#include "models/mixer_registry.h"
#include "parallel/mpi_communicator.h"
#include "runtime/philox.h"

namespace longseq {
namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t kSeed = 77;
constexpr int kSamples = 6;
constexpr float kStep = 1e-2f;
// Central differences of an fp32 forward: truncation ~ step^2 and rounding ~ 1e-7 / step of the
// loss scale; a wrong gradient is off by O(1) of the gradient's scale.
constexpr double kFiniteDifferenceTolerance = 2e-2;
// The smallest gradient scale compared against: with one-position chunks the true gradients of
// W_q and W_k are exactly zero and the analytic ones rounding noise (~1e-7).
constexpr double kScaleFloor = 1e-4;
// Distributed against single-rank: reassociation only.
constexpr double kExactTolerance = 1e-5;

MixerOptions small_options(std::int64_t local_chunk) {
  MixerOptions options;
  options.batch = 2;
  options.heads = 2;
  options.head_dim = 8;  // E = 16: H = 4, F = 64
  options.causal = true;
  options.state_size = 16;
  options.local_chunk = local_chunk;
  options.seed = kSeed;
  return options;
}

double weighted_sum(const Tensor& out, const Tensor& weights) {
  const std::vector<double> a = to_double_vector(out);
  const std::vector<double> w = to_double_vector(weights);
  double sum = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    sum += a[i] * w[i];
  }
  return sum;
}

double max_abs(const Tensor& tensor) {
  double m = 0.0;
  for (const double value : to_double_vector(tensor)) {
    m = std::max(m, std::abs(value));
  }
  return m;
}

// max |a - b| / max |b|.
double relative_error(const Tensor& a, const Tensor& b) {
  const std::vector<double> x = to_double_vector(a);
  const std::vector<double> y = to_double_vector(b);
  EXPECT_EQ(x.size(), y.size());
  double error = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    error = std::isnan(x[i]) ? INFINITY : std::max(error, std::abs(x[i] - y[i]));
  }
  const double scale = max_abs(b);
  return scale > 0.0 ? error / scale : error;
}

class GssTest : public testing::Test {
 protected:
  ComputeContext compute_{1};
  MpiCommunicator world_{MPI_COMM_WORLD, "world", 60s};
  std::unique_ptr<MpiCommunicator> self_ = world_.split(world_.rank(), 0, "self");
};

// One mixer on the whole sequence on this rank alone, with its random problem.
struct SingleRankRun {
  std::unique_ptr<Mixer> mixer;
  SequenceLayout layout;
  Tensor x, weights, out, grad_x;
};

SingleRankRun run_single(ComputeContext& compute, Communicator& self, const MixerOptions& options,
                         std::int64_t length) {
  std::unique_ptr<Mixer> mixer = make_mixer("gss", options);
  const Tensor x = random_full(mixer->input_specs(length)[0], kSeed, 1);
  const Tensor weights = random_full(mixer->output_specs(length)[0], kSeed, 2);
  SingleRankRun run{std::move(mixer),
                    SequenceLayout(LayoutKind::contiguous, length, 1),
                    x,
                    weights,
                    Tensor::empty(x.shape(), DType::f32),
                    Tensor::empty(x.shape(), DType::f32)};
  ShardContext context{compute, self, run.layout};
  run.mixer->forward(context, {&run.x, 1}, {&run.out, 1});
  run.mixer->backward(context, {&run.weights, 1}, {&run.grad_x, 1});
  return run;
}

// Checks `analytic` (the gradient of `values`) at kSamples elements against central differences
// of the loss, with each element set by writing into `values` (restored afterwards).
void expect_gradient(const std::string& name, const Tensor& analytic, const Tensor& values,
                     std::uint64_t stream, const std::function<double()>& loss) {
  const Tensor saved = values.clone();
  double scale = std::max(kScaleFloor, max_abs(analytic));
  std::vector<std::int64_t> elements;
  std::vector<double> numeric;
  for (int s = 0; s < kSamples; ++s) {
    const std::int64_t element =
        std::min(values.numel() - 1, static_cast<std::int64_t>(random_uniform(kSeed, stream, s) *
                                                               static_cast<float>(values.numel())));
    const float x = saved.data<float>()[element];
    values.data<float>()[element] = x + kStep;
    const double plus = loss();
    values.data<float>()[element] = x - kStep;
    const double minus = loss();
    values.copy_from(saved);
    numeric.push_back((plus - minus) / (static_cast<double>(x + kStep) - (x - kStep)));
    elements.push_back(element);
    scale = std::max(scale, std::abs(numeric.back()));
  }
  for (std::size_t s = 0; s < elements.size(); ++s) {
    EXPECT_LE(std::abs(analytic.data<float>()[elements[s]] - numeric[s]),
              kFiniteDifferenceTolerance * scale)
        << "d loss / d " << name << "[" << elements[s] << "]: analytic "
        << analytic.data<float>()[elements[s]] << ", finite differences " << numeric[s]
        << " (scale " << scale << ")";
  }
}

void expect_gradients_match_finite_differences(ComputeContext& compute, Communicator& self,
                                               const MixerOptions& options, std::int64_t length,
                                               std::size_t expected_parameters) {
  SingleRankRun run = run_single(compute, self, options, length);
  ShardContext context{compute, self, run.layout};
  const auto loss = [&] {
    const Tensor out = Tensor::empty(run.x.shape(), DType::f32);
    run.mixer->forward(context, {&run.x, 1}, {&out, 1});
    return weighted_sum(out, run.weights);
  };
  const Tensor grad_x = run.grad_x.clone();
  const std::vector<Tensor> gradients = run.mixer->parameter_gradients();
  std::vector<Tensor> gradient_copies;
  for (const Tensor& gradient : gradients) {
    gradient_copies.push_back(gradient.clone());
  }
  expect_gradient("x", grad_x, run.x, 900, loss);
  const std::vector<TensorSpec> specs = run.mixer->parameter_specs(length);
  const std::vector<Tensor> parameters = run.mixer->parameters();
  ASSERT_EQ(specs.size(), expected_parameters);
  ASSERT_EQ(parameters.size(), specs.size());
  ASSERT_EQ(gradients.size(), specs.size());
  for (std::size_t p = 0; p < parameters.size(); ++p) {
    EXPECT_EQ(parameters[p].shape(), specs[p].shape) << specs[p].name;
    expect_gradient(specs[p].name, gradient_copies[p], parameters[p], 950 + p, loss);
  }
}

TEST_F(GssTest, BlockGradientsMatchFiniteDifferences) {
  // 8 own parameters and the DSS's Lambda, B, C, D.
  expect_gradients_match_finite_differences(compute_, *self_, small_options(0), 23, 12);
}

TEST_F(GssTest, HybridGradientsMatchFiniteDifferences) {
  // Chunks of 5 over 23 positions (the last one short), and of one position.
  expect_gradients_match_finite_differences(compute_, *self_, small_options(5), 23, 18);
  expect_gradients_match_finite_differences(compute_, *self_, small_options(1), 23, 18);
}

// Sets every parameter named `name` to zero.
void zero_parameter(Mixer& mixer, const std::string& name) {
  const std::vector<TensorSpec> specs = mixer.parameter_specs(0);
  const std::vector<Tensor> parameters = mixer.parameters();
  for (std::size_t p = 0; p < specs.size(); ++p) {
    if (specs[p].name == name) {
      parameters[p].zero();
      return;
    }
  }
  FAIL() << "no parameter " << name;
}

TEST_F(GssTest, ZeroOutputProjectionsGiveTheShortcut) {
  for (const std::int64_t chunk : {0, 4}) {
    const MixerOptions options = small_options(chunk);
    std::unique_ptr<Mixer> mixer = make_mixer("gss", options);
    zero_parameter(*mixer, "w_o");
    if (chunk > 0) {
      zero_parameter(*mixer, "attention_w_o");
    }
    const SequenceLayout layout(LayoutKind::contiguous, 19, 1);
    ShardContext context{compute_, *self_, layout};
    const Tensor x = random_full(mixer->input_specs(19)[0], kSeed, 1);
    const Tensor out = Tensor::empty(x.shape(), DType::f32);
    mixer->forward(context, {&x, 1}, {&out, 1});
    EXPECT_EQ(relative_error(out, x), 0.0) << "local chunk " << chunk;
  }
}

TEST_F(GssTest, OnePositionChunksAttendToThemselves) {
  // With chunks of one position, each query sees only its own key, so the attention output is v:
  // the hybrid's attention block becomes x + LN(x) W_v W_o. Perturbing W_q or W_k then changes
  // nothing.
  const MixerOptions options = small_options(1);
  std::unique_ptr<Mixer> mixer = make_mixer("gss", options);
  const SequenceLayout layout(LayoutKind::contiguous, 17, 1);
  ShardContext context{compute_, *self_, layout};
  const Tensor x = random_full(mixer->input_specs(17)[0], kSeed, 1);
  const Tensor before = Tensor::empty(x.shape(), DType::f32);
  mixer->forward(context, {&x, 1}, {&before, 1});
  zero_parameter(*mixer, "attention_w_q");
  zero_parameter(*mixer, "attention_w_k");
  const Tensor after = Tensor::empty(x.shape(), DType::f32);
  mixer->forward(context, {&x, 1}, {&after, 1});
  EXPECT_EQ(relative_error(after, before), 0.0);
}

TEST_F(GssTest, WidthsAndStateSize) {
  const GssBlockShape small = GssBlockShape::of(1, 32, 512);
  EXPECT_EQ(small.expanded, 128);
  EXPECT_EQ(small.hidden, 8);
  const GssBlockShape paper = GssBlockShape::of(1, 1024, 512);
  EXPECT_EQ(paper.expanded, 4096);
  EXPECT_EQ(paper.hidden, 256);
  EXPECT_EQ(GssBlockShape::of(1, 4096, 512).hidden, 256);
  EXPECT_EQ(GssBlockShape::of(1, 2, 512).hidden, 1);

  MixerOptions options = small_options(0);
  options.state_size = MixerOptions{}.state_size;  // the default: the paper's 512 modes
  const auto lambda_shape = [](const Mixer& mixer) {
    const std::vector<TensorSpec> specs = mixer.parameter_specs(0);
    for (const TensorSpec& spec : specs) {
      if (spec.name == "ssm_lambda") {
        return spec.shape;
      }
    }
    return Shape{};
  };
  EXPECT_EQ(lambda_shape(*make_mixer("gss", options)), (Shape{1, 512, 2}));
  options.state_size = 24;
  EXPECT_EQ(lambda_shape(*make_mixer("gss", options)), (Shape{1, 24, 2}));
}

TEST_F(GssTest, RejectsNonCausal) {
  MixerOptions options = small_options(0);
  options.causal = false;
  try {
    make_mixer("gss", options);
    FAIL() << "causal = false accepted";
  } catch (const UserError& error) {
    EXPECT_EQ(std::string(error.what()).rfind("[gss] is causal", 0), 0u) << error.what();
  }
}

TEST_F(GssTest, DistributedHybridEqualsSingleRank) {
  const std::int64_t length = 37;
  for (const LayoutKind kind : {LayoutKind::contiguous, LayoutKind::zigzag, LayoutKind::striped}) {
    for (const std::string strategy : {"chain", "allgather"}) {
      SCOPED_TRACE(std::string(layout_name(kind)) + " " + strategy);
      MixerOptions options = small_options(6);
      options.strategy = strategy;
      const SingleRankRun reference = run_single(compute_, *self_, options, length);

      const int rank = world_.rank();
      const SequenceLayout layout(kind, length, world_.size());
      std::unique_ptr<Mixer> mixer = make_mixer("gss", options);
      const TensorSpec input = mixer->input_specs(length)[0];
      const Tensor x = random_shard(input, layout, rank, kSeed, 1);
      const Tensor weights = random_shard(mixer->output_specs(length)[0], layout, rank, kSeed, 2);
      const Tensor out = Tensor::empty(x.shape(), DType::f32);
      const Tensor grad_x = Tensor::empty(x.shape(), DType::f32);
      ShardContext context{compute_, world_, layout};
      mixer->forward(context, {&x, 1}, {&out, 1});
      mixer->backward(context, {&weights, 1}, {&grad_x, 1});

      EXPECT_LE(relative_error(out, scatter_shard(reference.out, layout, rank, 1)),
                kExactTolerance);
      EXPECT_LE(relative_error(grad_x, scatter_shard(reference.grad_x, layout, rank, 1)),
                kExactTolerance);
      const std::vector<Tensor> gradients = mixer->parameter_gradients();
      const std::vector<Tensor> expected = reference.mixer->parameter_gradients();
      const std::vector<TensorSpec> specs = mixer->parameter_specs(length);
      ASSERT_EQ(gradients.size(), expected.size());
      for (std::size_t p = 0; p < gradients.size(); ++p) {
        EXPECT_LE(relative_error(gradients[p], expected[p]), kExactTolerance) << specs[p].name;
      }
    }
  }
}

}  // namespace
}  // namespace longseq
