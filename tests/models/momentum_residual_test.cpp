// The momentum residual connection (models/momentum_residual.h): mu_r = 0, gamma_r = 1 is the
// plain residual; the forward is the heavy-ball recurrence; the backward equals finite differences
// (fp64), with the adaptive momenta held constant; adaptive mu_l follows its formula and clamps.
#include "models/momentum_residual.h"

#include <gtest/gtest.h>
#include <mpi.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

#include "parallel/mpi_communicator.h"

namespace longseq {
namespace {

using namespace std::chrono_literals;

constexpr std::int64_t kLayers = 3;
const Shape kShape{2, 5, 3};  // (B, N, E)

// Deterministic, distinct values in [-1, 1].
Tensor pattern(DType dtype, double seed) {
  const Tensor t = Tensor::empty(kShape, DType::f64);
  double* data = t.data<double>();
  for (std::int64_t e = 0; e < t.numel(); ++e) {
    data[e] = std::sin(seed * 1.7 + static_cast<double>(e) * 0.91 + seed * seed * 0.13);
  }
  return t.to(dtype);
}

class MomentumResidualTest : public testing::Test {
 protected:
  MpiCommunicator world_{MPI_COMM_WORLD, "world", 60s};
};

// x_{L} after kLayers layers of the residual with inputs x_0 and g_1 .. g_L (copies; inputs kept).
Tensor run_forward(MomentumResidual& residual, const Tensor& x0, const std::vector<Tensor>& g) {
  const Tensor x = x0.clone();
  residual.reset();
  for (const Tensor& layer_g : g) {
    residual.forward(x, layer_g);
  }
  return x;
}

std::vector<Tensor> layer_outputs(DType dtype) {
  std::vector<Tensor> g;
  for (std::int64_t l = 0; l < kLayers; ++l) {
    g.push_back(pattern(dtype, 2.0 + static_cast<double>(l)));
  }
  return g;
}

TEST_F(MomentumResidualTest, NoMomentumUnitStepIsPlainResidual) {
  MomentumResidualOptions options;
  options.momentum = 0.0;
  options.step = 1.0;
  MomentumResidual residual(options, world_);
  const Tensor x0 = pattern(DType::f32, 1.0);
  const std::vector<Tensor> g = layer_outputs(DType::f32);
  const Tensor x = run_forward(residual, x0, g);
  for (std::int64_t e = 0; e < x.numel(); ++e) {
    float expected = x0.data<float>()[e];
    for (const Tensor& layer_g : g) {
      expected += layer_g.data<float>()[e];
    }
    EXPECT_EQ(x.data<float>()[e], expected) << "element " << e;
  }
}

TEST_F(MomentumResidualTest, ForwardIsHeavyBall) {
  MomentumResidualOptions options;
  options.momentum = 0.4;
  options.step = 0.7;
  MomentumResidual residual(options, world_);
  const Tensor x0 = pattern(DType::f64, 1.0);
  const std::vector<Tensor> g = layer_outputs(DType::f64);
  const Tensor x = run_forward(residual, x0, g);
  for (std::int64_t e = 0; e < x.numel(); ++e) {
    double position = x0.data<double>()[e];
    double velocity = 0.0;
    for (const Tensor& layer_g : g) {
      velocity = 0.4 * velocity - layer_g.data<double>()[e];
      position -= 0.7 * velocity;
    }
    EXPECT_NEAR(x.data<double>()[e], position, 1e-14);
    EXPECT_NEAR(residual.velocity().data<double>()[e], velocity, 1e-14);
  }
}

// dL/dx_0 and dL/dg_l of L = sum(wx x_L) + sum(wv v_L) from the backward, against central
// differences of `loss` (which recomputes the forward from the probed inputs).
void check_gradients(MomentumResidual& residual, const Tensor& x0, const std::vector<Tensor>& g,
                     const std::function<double()>& loss) {
  const Tensor wx = pattern(DType::f64, 7.0);
  const Tensor wv = pattern(DType::f64, 8.0);
  run_forward(residual, x0, g);
  const Tensor grad_x = wx.clone();
  const Tensor grad_velocity = wv.clone();
  std::vector<Tensor> grad_g(g.size());
  for (std::int64_t l = kLayers - 1; l >= 0; --l) {
    grad_g[l] = Tensor::empty(kShape, DType::f64);
    residual.backward(l, grad_x, grad_velocity, grad_g[l]);
  }
  const auto numeric = [&](const Tensor& input, std::int64_t e) {
    const double h = 1e-6;
    double* value = input.data<double>() + e;
    const double saved = *value;
    *value = saved + h;
    const double up = loss();
    *value = saved - h;
    const double down = loss();
    *value = saved;
    return (up - down) / (2 * h);
  };
  for (std::int64_t e = 0; e < x0.numel(); ++e) {
    EXPECT_NEAR(grad_x.data<double>()[e], numeric(x0, e), 1e-8) << "dx_0 at " << e;
    for (std::int64_t l = 0; l < kLayers; ++l) {
      EXPECT_NEAR(grad_g[l].data<double>()[e], numeric(g[l], e), 1e-8) << "dg_" << l << " at " << e;
    }
  }
}

double weighted(const Tensor& values, const Tensor& weights) {
  double sum = 0.0;
  for (std::int64_t e = 0; e < values.numel(); ++e) {
    sum += values.data<double>()[e] * weights.data<double>()[e];
  }
  return sum;
}

TEST_F(MomentumResidualTest, BackwardMatchesFiniteDifferences) {
  MomentumResidualOptions options;
  options.momentum = 0.6;
  options.step = 0.9;
  MomentumResidual residual(options, world_);
  const Tensor x0 = pattern(DType::f64, 1.0);
  const std::vector<Tensor> g = layer_outputs(DType::f64);
  MomentumResidual probe(options, world_);
  const auto loss = [&] {
    const Tensor x = run_forward(probe, x0, g);
    return weighted(x, pattern(DType::f64, 7.0)) +
           weighted(probe.velocity(), pattern(DType::f64, 8.0));
  };
  check_gradients(residual, x0, g, loss);
}

TEST_F(MomentumResidualTest, AdaptiveMomentumFollowsItsFormula) {
  EXPECT_EQ(adaptive_momentum(4.0, 0.0, 1e-4), 0.0);                  // no velocity yet
  EXPECT_NEAR(adaptive_momentum(0.0, 1.0, 1e-4), 1.0 - 1e-4, 1e-15);  // clamped below 1
  EXPECT_NEAR(adaptive_momentum(1.0, 1.0, 1e-4), 0.0, 1e-15);
  // ||g - g'|| / ||v|| = 1/4: (1 - 1/2)^2.
  EXPECT_NEAR(adaptive_momentum(1.0, 16.0, 1e-4), 0.25, 1e-15);

  MomentumResidualOptions options;
  options.adaptive = true;
  options.step = 0.8;
  MomentumResidual residual(options, world_);
  const Tensor x0 = pattern(DType::f64, 1.0);
  const std::vector<Tensor> g = layer_outputs(DType::f64);
  run_forward(residual, x0, g);
  ASSERT_EQ(residual.momenta().size(), static_cast<std::size_t>(kLayers));
  EXPECT_EQ(residual.momenta()[0], 0.0);
  // Recompute mu_l from the recurrence by hand.
  std::vector<double> velocity(static_cast<std::size_t>(x0.numel()), 0.0);
  for (std::int64_t l = 0; l < kLayers; ++l) {
    double difference = 0.0;
    double norm = 0.0;
    for (std::int64_t e = 0; e < x0.numel(); ++e) {
      if (l > 0) {
        const double d = g[l].data<double>()[e] - g[l - 1].data<double>()[e];
        difference += d * d;
      }
      norm += velocity[e] * velocity[e];
    }
    const double mu = l == 0 ? 0.0 : adaptive_momentum(difference, norm, 1e-4);
    EXPECT_NEAR(residual.momenta()[l], mu, 1e-15) << "layer " << l;
    for (std::int64_t e = 0; e < x0.numel(); ++e) {
      velocity[e] = mu * velocity[e] - g[l].data<double>()[e];
    }
  }
}

// The backward of the adaptive residual is that of the fixed recurrence with the recorded momenta
// (stop-gradient through the norms).
TEST_F(MomentumResidualTest, AdaptiveBackwardHoldsMomentaConstant) {
  MomentumResidualOptions options;
  options.adaptive = true;
  options.step = 0.75;
  MomentumResidual residual(options, world_);
  const Tensor x0 = pattern(DType::f64, 1.0);
  const std::vector<Tensor> g = layer_outputs(DType::f64);
  run_forward(residual, x0, g);
  const std::vector<double> momenta = residual.momenta();
  const auto loss = [&] {
    std::vector<double> x(static_cast<std::size_t>(x0.numel()));
    double total = 0.0;
    const Tensor wx = pattern(DType::f64, 7.0);
    const Tensor wv = pattern(DType::f64, 8.0);
    for (std::int64_t e = 0; e < x0.numel(); ++e) {
      double position = x0.data<double>()[e];
      double velocity = 0.0;
      for (std::int64_t l = 0; l < kLayers; ++l) {
        velocity = momenta[l] * velocity - g[l].data<double>()[e];
        position -= 0.75 * velocity;
      }
      total += wx.data<double>()[e] * position + wv.data<double>()[e] * velocity;
    }
    return total;
  };
  check_gradients(residual, x0, g, loss);
}

}  // namespace
}  // namespace longseq
