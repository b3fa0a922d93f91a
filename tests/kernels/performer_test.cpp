// Performer features (kernels/performer.h): the kernels against the reference on every backend;
// the estimator's statistics (MECHANISMS.md test item 3: unbiased, RMSE ~ m^(-1/2), orthogonal
// blocks orthogonal and better than i.i.d.); the stabiliser cancelling in the gradient (finite
// differences through features and linear attention); and, with fixed features, the recurrent,
// chunked and quadratic forms of causal Performer attention agreeing at every position (item 2)
// for inputs whose unstabilised features would overflow fp32.
#include "kernels/performer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/linear_attention.h"
#include "kernels/reference.h"
#include "tests/kernels/harness.h"

namespace longseq::test {
namespace {

struct FeatureParameters {
  std::int64_t batch = 1;
  std::int64_t heads = 2;
  std::int64_t length = 37;
  std::int64_t head_dim = 16;
  std::int64_t features = 40;  // not a multiple of d: a partial last block
  double input_scale = 1.0;
};

class PerformerFeatureCase final : public KernelCase {
 public:
  explicit PerformerFeatureCase(FeatureParameters parameters) : p_(parameters) {}

  [[nodiscard]] std::string name() const override {
    return fmt::format("performer_features_h{}_n{}_d{}_m{}_x{}", p_.heads, p_.length, p_.head_dim,
                       p_.features, static_cast<int>(p_.input_scale));
  }
  [[nodiscard]] std::vector<DType> dtypes(Device /*device*/) const override { return {DType::f32}; }
  [[nodiscard]] double flops() const override {
    return 3.0 *
           performer_features_flops(p_.batch * p_.heads * p_.length, p_.features, p_.head_dim);
  }

  [[nodiscard]] Results run(ComputeContext& context, Device device,
                            DType /*dtype*/) const override {
    const Tensor x = on_device(input(), device);
    const Tensor projection = on_device(this->projection(), device);
    const Tensor features = Tensor::empty(feature_shape(), DType::f32, device);
    const Tensor log_scale = Tensor::empty({p_.batch, p_.heads, p_.length}, DType::f32, device);
    performer_features_forward(context, x, projection, features, log_scale);
    const Tensor grad_x = Tensor::empty(x.shape(), DType::f32, device);
    performer_features_backward(context, x, projection, features,
                                on_device(grad_features(), device), grad_x);
    context.synchronize();
    return {{"features", to_host(features)},
            {"log_scale", to_host(log_scale)},
            {"grad_x", to_host(grad_x)}};
  }

  [[nodiscard]] Results reference(DType /*dtype*/) const override {
    const Tensor features = Tensor::empty(feature_shape(), DType::f64);
    const Tensor log_scale = Tensor::empty({p_.batch, p_.heads, p_.length}, DType::f64);
    const Tensor x = as_f64(input());
    const Tensor projection = as_f64(this->projection());
    reference::performer_features_forward(x, projection, features, log_scale);
    const Tensor grad_x = Tensor::empty(x.shape(), DType::f64);
    reference::performer_features_backward(x, projection, as_f64(grad_features()), grad_x);
    return {{"features", features}, {"log_scale", log_scale}, {"grad_x", grad_x}};
  }

 private:
  [[nodiscard]] Shape feature_shape() const { return {p_.batch, p_.heads, p_.length, p_.features}; }
  [[nodiscard]] Tensor input() const {
    return random_normal_tensor({p_.batch, p_.heads, p_.length, p_.head_dim}, 3, 1, DType::f32,
                                p_.input_scale);
  }
  [[nodiscard]] Tensor grad_features() const {
    return random_normal_tensor(feature_shape(), 3, 2, DType::f32);
  }
  [[nodiscard]] Tensor projection() const {
    return performer_projection({.features = p_.features, .head_dim = p_.head_dim, .seed = 7});
  }

  FeatureParameters p_;
};

std::vector<KernelCasePtr> performer_cases() {
  return {std::make_shared<PerformerFeatureCase>(FeatureParameters{}),
          std::make_shared<PerformerFeatureCase>(
              FeatureParameters{.length = 70, .head_dim = 64, .features = 256}),
          // Logits near -300: unstabilised features would underflow to 0.
          std::make_shared<PerformerFeatureCase>(FeatureParameters{.input_scale = 6.0})};
}

INSTANTIATE_TEST_SUITE_P(Performer, CpuBackend,
                         testing::ValuesIn(cases_for(Device::cpu, performer_cases())), case_name);
INSTANTIATE_TEST_SUITE_P(Performer, CudaBackend,
                         testing::ValuesIn(cases_for(Device::cuda, performer_cases())), case_name);

// ---- the estimator (item 3)

// phi(x) . phi(y) = exp(s_x + s_y) phi~(x) . phi~(y) for one row x and one row y (d values each).
double estimate(ComputeContext& context, const Tensor& projection, const std::vector<float>& x,
                const std::vector<float>& y) {
  const auto d = static_cast<std::int64_t>(x.size());
  const Tensor rows = Tensor::empty({1, 1, 2, d}, DType::f32);
  std::memcpy(rows.data<float>(), x.data(), x.size() * sizeof(float));
  std::memcpy(rows.data<float>() + d, y.data(), y.size() * sizeof(float));
  const std::int64_t m = projection.size(0);
  const Tensor features = Tensor::empty({1, 1, 2, m}, DType::f32);
  const Tensor log_scale = Tensor::empty({1, 1, 2}, DType::f32);
  performer_features_forward(context, rows, projection, features, log_scale);
  double dot = 0.0;
  for (std::int64_t r = 0; r < m; ++r) {
    dot += static_cast<double>(features.data<float>()[r]) * features.data<float>()[m + r];
  }
  return dot *
         std::exp(static_cast<double>(log_scale.data<float>()[0]) + log_scale.data<float>()[1]);
}

// A pair (x, y) of d-vectors with entries N(0, scale^2), from `stream`.
std::pair<std::vector<float>, std::vector<float>> random_pair(std::int64_t d, std::uint64_t stream,
                                                              double scale) {
  const Tensor values = random_normal_tensor({2, d}, 11, stream, DType::f32, scale);
  const float* v = values.data<float>();
  return {std::vector<float>(v, v + d), std::vector<float>(v + d, v + 2 * d)};
}

// exp(x . y / sqrt(d)), the softmax kernel the features estimate, and x' + y' norms.
double exact_kernel(const std::vector<float>& x, const std::vector<float>& y) {
  double dot = 0.0;
  for (std::size_t c = 0; c < x.size(); ++c) {
    dot += static_cast<double>(x[c]) * y[c];
  }
  return std::exp(dot / std::sqrt(static_cast<double>(x.size())));
}

// Mean squared relative error of the estimates of `pairs` pairs over `draws` projections.
double relative_mse(ComputeContext& context, std::int64_t d, std::int64_t m, bool orthogonal,
                    int pairs, int draws) {
  double sum = 0.0;
  for (int pair = 0; pair < pairs; ++pair) {
    const auto [x, y] = random_pair(d, 100 + pair, 0.6);
    const double exact = exact_kernel(x, y);
    for (int draw = 0; draw < draws; ++draw) {
      const Tensor w = performer_projection({.features = m,
                                             .head_dim = d,
                                             .orthogonal = orthogonal,
                                             .seed = 21,
                                             .epoch = static_cast<std::uint64_t>(draw)});
      const double error = estimate(context, w, x, y) / exact - 1.0;
      sum += error * error;
    }
  }
  return sum / (pairs * draws);
}

TEST(PerformerEstimator, UnbiasedWithinFourSigma) {
  ComputeContext context(kTestThreads);
  constexpr std::int64_t kDim = 8;
  constexpr std::int64_t kFeatures = 16;
  constexpr int kDraws = 4000;
  for (std::uint64_t stream = 1; stream <= 3; ++stream) {
    const auto [x, y] = random_pair(kDim, stream, 0.8);
    double mean = 0.0;
    for (int draw = 0; draw < kDraws; ++draw) {
      const Tensor w = performer_projection({.features = kFeatures,
                                             .head_dim = kDim,
                                             .orthogonal = false,
                                             .seed = 5,
                                             .epoch = static_cast<std::uint64_t>(draw)});
      mean += estimate(context, w, x, y) / kDraws;
    }
    // Var = (1/m) exp(2 x'.y') (exp(||x' + y'||^2) - 1) for i.i.d. positive features.
    const double scale = std::pow(static_cast<double>(kDim), -0.25);
    double dot = 0.0;
    double sum_norm = 0.0;
    for (std::int64_t c = 0; c < kDim; ++c) {
      dot += scale * x[c] * scale * y[c];
      sum_norm += std::pow(scale * (x[c] + y[c]), 2);
    }
    const double variance = std::exp(2.0 * dot) * (std::exp(sum_norm) - 1.0) / kFeatures;
    const double sigma = std::sqrt(variance / kDraws);
    EXPECT_LE(std::abs(mean - exact_kernel(x, y)), 4.0 * sigma)
        << "pair " << stream << ": mean " << mean << ", exact " << exact_kernel(x, y);
  }
}

TEST(PerformerEstimator, RmseFallsAsInverseSquareRootOfFeatures) {
  ComputeContext context(kTestThreads);
  const std::vector<std::int64_t> counts{8, 16, 32, 64, 128, 256};
  // Least-squares slope of log RMSE against log m.
  double sx = 0.0, sy = 0.0, sxx = 0.0, sxy = 0.0;
  for (const std::int64_t m : counts) {
    const double lx = std::log(static_cast<double>(m));
    const double ly = 0.5 * std::log(relative_mse(context, 8, m, false, 8, 60));
    sx += lx;
    sy += ly;
    sxx += lx * lx;
    sxy += lx * ly;
  }
  const double n = static_cast<double>(counts.size());
  const double slope = (n * sxy - sx * sy) / (n * sxx - sx * sx);
  EXPECT_GE(slope, -0.65);
  EXPECT_LE(slope, -0.35);
}

TEST(PerformerEstimator, OrthogonalBlocksAreOrthogonal) {
  constexpr std::int64_t kDim = 16;
  const Tensor w = performer_projection({.features = 40, .head_dim = kDim, .seed = 3});
  const float* rows = w.data<float>();
  for (std::int64_t i = 0; i < 40; ++i) {
    for (std::int64_t j = i / kDim * kDim; j < std::min<std::int64_t>(40, (i / kDim + 1) * kDim);
         ++j) {
      double dot = 0.0, ni = 0.0, nj = 0.0;
      for (std::int64_t c = 0; c < kDim; ++c) {
        dot += static_cast<double>(rows[i * kDim + c]) * rows[j * kDim + c];
        ni += static_cast<double>(rows[i * kDim + c]) * rows[i * kDim + c];
        nj += static_cast<double>(rows[j * kDim + c]) * rows[j * kDim + c];
      }
      const double cosine = dot / std::sqrt(ni * nj);
      EXPECT_NEAR(cosine, i == j ? 1.0 : 0.0, 1e-5) << "rows " << i << " and " << j;
    }
  }
  // Redrawing changes the features; the same (seed, epoch) gives the same bits.
  const Tensor again = performer_projection({.features = 40, .head_dim = kDim, .seed = 3});
  const Tensor redrawn =
      performer_projection({.features = 40, .head_dim = kDim, .seed = 3, .epoch = 1});
  EXPECT_TRUE(bitwise_equal(w, again));
  EXPECT_FALSE(bitwise_equal(w, redrawn));
}

TEST(PerformerEstimator, OrthogonalErrorBelowIid) {
  ComputeContext context(kTestThreads);
  // One full block (m = d): the same Gaussian draws, orthogonalised or not.
  const double orthogonal = relative_mse(context, 64, 64, true, 16, 100);
  const double iid = relative_mse(context, 64, 64, false, 16, 100);
  EXPECT_LT(orthogonal, iid) << "orthogonal MSE " << orthogonal << ", i.i.d. MSE " << iid;
}

// ---- attention through the features (reference, fp64)

// Causal Performer attention of x = (q, k, v) in double through the references: features, then
// linear attention with the identity map, eps = 0 and the keys' log scales.
struct PerformerAttention {
  Tensor projection;  // f64 (m, d)
  LinearAttentionOptions options(const Tensor& key_log_scale) const {
    LinearAttentionOptions o;
    o.causal = true;
    o.eps = 0.0f;
    o.feature_map = LinearAttentionFeatureMap::identity;
    o.key_log_scale = key_log_scale;
    return o;
  }
  [[nodiscard]] Shape feature_shape(const Tensor& x) const {
    return {x.size(0), x.size(1), x.size(2), projection.size(0)};
  }
  Tensor forward(const Tensor& q, const Tensor& k, const Tensor& v) const {
    const Tensor fq = Tensor::empty(feature_shape(q), DType::f64);
    const Tensor fk = Tensor::empty(feature_shape(k), DType::f64);
    const Tensor sq = Tensor::empty({q.size(0), q.size(1), q.size(2)}, DType::f64);
    const Tensor sk = Tensor::empty({k.size(0), k.size(1), k.size(2)}, DType::f64);
    reference::performer_features_forward(q, projection, fq, sq);
    reference::performer_features_forward(k, projection, fk, sk);
    const Tensor out = Tensor::empty(v.shape(), DType::f64);
    reference::linear_attention_forward(fq, fk, v, options(sk), {}, out, {});
    return out;
  }
};

TEST(PerformerReference, StabiliserCancelsInGradients) {
  const Shape shape{1, 1, 5, 4};
  const Tensor q = random_normal_tensor(shape, 8, 1, DType::f64, 1.5);
  const Tensor k = random_normal_tensor(shape, 8, 2, DType::f64, 1.5);
  const Tensor v = random_normal_tensor(shape, 8, 3, DType::f64);
  const Tensor weights = random_normal_tensor(shape, 8, 4, DType::f64);
  const PerformerAttention attention{
      as_f64(performer_projection({.features = 6, .head_dim = 4, .seed = 1}))};
  const auto loss = [&] { return weighted_sum(attention.forward(q, k, v), weights); };
  // Analytic: linear attention backward to the stabilised features, then the features' backward
  // that drops the stabilisers' paths.
  const Tensor fq = Tensor::empty(attention.feature_shape(q), DType::f64);
  const Tensor fk = Tensor::empty(attention.feature_shape(k), DType::f64);
  const Tensor sq = Tensor::empty({1, 1, 5}, DType::f64);
  const Tensor sk = Tensor::empty({1, 1, 5}, DType::f64);
  reference::performer_features_forward(q, attention.projection, fq, sq);
  reference::performer_features_forward(k, attention.projection, fk, sk);
  const Tensor grad_fq = Tensor::empty(fq.shape(), DType::f64);
  const Tensor grad_fk = Tensor::empty(fk.shape(), DType::f64);
  const Tensor grad_v = Tensor::empty(v.shape(), DType::f64);
  reference::linear_attention_backward(fq, fk, v, weights, attention.options(sk), {}, {}, grad_fq,
                                       grad_fk, grad_v, {});
  const Tensor grad_q = Tensor::empty(q.shape(), DType::f64);
  const Tensor grad_k = Tensor::empty(k.shape(), DType::f64);
  reference::performer_features_backward(q, attention.projection, grad_fq, grad_q);
  reference::performer_features_backward(k, attention.projection, grad_fk, grad_k);
  expect_gradient_matches("grad_q", grad_q, finite_difference_gradient(q, loss), 1e-7);
  expect_gradient_matches("grad_k", grad_k, finite_difference_gradient(k, loss), 1e-7);
  expect_gradient_matches("grad_v", grad_v, finite_difference_gradient(v, loss), 1e-7);
}

// ---- recurrent = chunked = quadratic with fixed features (item 2), fp32 kernels vs fp64

TEST(PerformerForms, RecurrentEqualsChunkedEqualsQuadratic) {
  ComputeContext context(kTestThreads);
  constexpr std::int64_t kLength = 150;
  constexpr std::int64_t kDim = 16;
  constexpr std::int64_t kFeatures = 64;
  const Shape shape{1, 2, kLength, kDim};
  // Queries offset by 12 in the first half of the dimensions, keys in the second: ||x'||^2 / 2
  // is about 144, so the logits lie far below fp32's exp range, while q' . k' stays moderate
  // (attention weights within fp32's range, as in any usable model).
  const Tensor q = random_normal_tensor(shape, 9, 1, DType::f32);
  const Tensor k = random_normal_tensor(shape, 9, 2, DType::f32);
  for (std::int64_t row = 0; row < 2 * kLength; ++row) {
    for (std::int64_t c = 0; c < kDim / 2; ++c) {
      q.data<float>()[row * kDim + c] += 12.0f;
      k.data<float>()[row * kDim + kDim / 2 + c] += 12.0f;
    }
  }
  const Tensor v = random_normal_tensor(shape, 9, 3, DType::f32);
  const Tensor w = performer_projection({.features = kFeatures, .head_dim = kDim, .seed = 4});
  const PerformerAttention attention{as_f64(w)};
  const Tensor expected = attention.forward(as_f64(q), as_f64(k), as_f64(v));

  const Shape feature_shape{1, 2, kLength, kFeatures};
  const Tensor fq = Tensor::empty(feature_shape, DType::f32);
  const Tensor fk = Tensor::empty(feature_shape, DType::f32);
  const Tensor sq = Tensor::empty({1, 2, kLength}, DType::f32);
  const Tensor sk = Tensor::empty({1, 2, kLength}, DType::f32);
  performer_features_forward(context, q, w, fq, sq);
  performer_features_forward(context, k, w, fk, sk);
  float largest = 0.0f;
  for (std::int64_t e = 0; e < sk.numel(); ++e) {
    largest = std::max(largest, std::abs(sk.data<float>()[e]));
  }
  EXPECT_GT(largest, 88.0f) << "the test should exercise log scales beyond fp32's exp range";
  const LinearAttentionOptions options = attention.options(sk);
  const Tensor chunked = Tensor::empty(v.shape(), DType::f32);
  linear_attention_forward(context, fq, fk, v, options, {}, chunked, {});
  expect_close("chunked", chunked, expected, 1e-4);

  // Recurrent: one step per position from the zero state (log scale -inf).
  const LinearAttentionState state{Tensor::zeros({1, 2, kFeatures, kDim}, DType::f32),
                                   Tensor::zeros({1, 2, kFeatures}, DType::f32),
                                   Tensor::from_vector({-INFINITY, -INFINITY}, {1, 2})};
  const Tensor recurrent = Tensor::empty(v.shape(), DType::f32);
  for (std::int64_t i = 0; i < kLength; ++i) {
    const auto row = [&](const Tensor& t) {
      const std::int64_t d = t.size(3);
      const Tensor r = Tensor::empty({1, 2, d}, DType::f32);
      for (std::int64_t h = 0; h < 2; ++h) {
        std::memcpy(r.data<float>() + h * d, t.data<float>() + (h * kLength + i) * d,
                    d * sizeof(float));
      }
      return r;
    };
    const Tensor scale = Tensor::empty({1, 2}, DType::f32);
    for (std::int64_t h = 0; h < 2; ++h) {
      scale.data<float>()[h] = sk.data<float>()[h * kLength + i];
    }
    LinearAttentionOptions step_options = options;
    step_options.key_log_scale = scale;
    const Tensor out = Tensor::empty({1, 2, kDim}, DType::f32);
    linear_attention_step(context, row(fq), row(fk), row(v), step_options, state, out);
    for (std::int64_t h = 0; h < 2; ++h) {
      std::memcpy(recurrent.data<float>() + (h * kLength + i) * kDim, out.data<float>() + h * kDim,
                  kDim * sizeof(float));
    }
  }
  expect_close("recurrent", recurrent, expected, 1e-4);
}

}  // namespace
}  // namespace longseq::test
