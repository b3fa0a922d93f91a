#include "models/momentum_residual.h"

#include <algorithm>
#include <cmath>

#include "runtime/error.h"

namespace longseq {

namespace {

constexpr const char* kOp = "momentum_residual";

void check_like(const char* name, const Tensor& tensor, const Tensor& like) {
  LONGSEQ_CHECK(tensor.defined() && tensor.shape() == like.shape() &&
                    tensor.dtype() == like.dtype() && tensor.device() == Device::cpu &&
                    tensor.is_contiguous(),
                "[{}] {} must be a contiguous CPU tensor like {}, got {}", kOp, name,
                like.describe(), tensor.defined() ? tensor.describe() : "undefined");
}

// Calls f with the element pointers of the tensors as float* or double*.
template <typename F>
void with_elements(DType dtype, F&& f) {
  LONGSEQ_CHECK(dtype == DType::f32 || dtype == DType::f64, "[{}] needs fp32 or fp64, got {}", kOp,
                dtype_name(dtype));
  if (dtype == DType::f32) {
    f(float{});
  } else {
    f(double{});
  }
}

}  // namespace

double adaptive_momentum(double difference_squared, double velocity_squared, double delta) {
  if (velocity_squared <= 0.0) {
    return 0.0;
  }
  const double root = std::sqrt(std::sqrt(difference_squared) / std::sqrt(velocity_squared));
  return std::clamp((1.0 - root) * (1.0 - root), 0.0, 1.0 - delta);
}

MomentumResidual::MomentumResidual(const MomentumResidualOptions& options,
                                   Communicator& sequence_group)
    : options_(options), sequence_group_(sequence_group) {
  LONGSEQ_REQUIRE(options.momentum >= 0.0 && options.momentum < 1.0,
                  "[{}] momentum must be in [0, 1), got {}", kOp, options.momentum);
  LONGSEQ_REQUIRE(options.delta > 0.0 && options.delta <= 1.0,
                  "[{}] delta must be in (0, 1], got {}", kOp, options.delta);
}

void MomentumResidual::reset() {
  velocity_ = Tensor();
  previous_g_ = Tensor();
  momenta_.clear();
}

// mu_l: fixed, or from the all-reduced squared norms of g_l - g_{l-1} and v_{l-1}.
double MomentumResidual::layer_momentum(const Tensor& g) {
  if (!options_.adaptive) {
    return options_.momentum;
  }
  if (!previous_g_.defined()) {
    return 0.0;
  }
  const Tensor sums = Tensor::zeros({2}, DType::f64);
  double* s = sums.data<double>();
  with_elements(g.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* current = g.data<T>();
    const T* previous = previous_g_.data<T>();
    const T* velocity = velocity_.data<T>();
    for (std::int64_t e = 0; e < g.numel(); ++e) {
      const double difference = static_cast<double>(current[e]) - previous[e];
      s[0] += difference * difference;
      s[1] += static_cast<double>(velocity[e]) * velocity[e];
    }
  });
  sequence_group_.all_reduce(sums, ReduceOp::sum);
  return adaptive_momentum(s[0], s[1], options_.delta);
}

double MomentumResidual::forward(const Tensor& x, const Tensor& g) {
  check_like("g", g, x);
  if (!velocity_.defined()) {
    velocity_ = Tensor::zeros(x.shape(), x.dtype());
  }
  check_like("the velocity", velocity_, x);
  const double mu = layer_momentum(g);
  with_elements(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    T* xs = x.data<T>();
    const T* gs = g.data<T>();
    T* vs = velocity_.data<T>();
    const T momentum = static_cast<T>(mu);
    const T step = static_cast<T>(options_.step);
    for (std::int64_t e = 0; e < x.numel(); ++e) {
      vs[e] = momentum * vs[e] - gs[e];
      xs[e] -= step * vs[e];
    }
  });
  if (options_.adaptive) {
    previous_g_ = g.clone();
  }
  momenta_.push_back(mu);
  return mu;
}

// With u = dL/dv_l in total = grad_velocity - gamma_r grad_x (v_l feeds x_{l+1} and v_{l+1}):
//   dL/dx_l = dL/dx_{l+1},   dL/dg_l = -u,   dL/dv_{l-1} = mu_l u
void MomentumResidual::backward(std::int64_t layer, const Tensor& grad_x,
                                const Tensor& grad_velocity, const Tensor& grad_g) const {
  LONGSEQ_CHECK(layer >= 0 && layer < static_cast<std::int64_t>(momenta_.size()),
                "[{}] backward of layer {} after a forward of {} layers", kOp, layer,
                momenta_.size());
  check_like("grad_velocity", grad_velocity, grad_x);
  check_like("grad_g", grad_g, grad_x);
  with_elements(grad_x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* gx = grad_x.data<T>();
    T* gv = grad_velocity.data<T>();
    T* gg = grad_g.data<T>();
    const T momentum = static_cast<T>(momenta_[static_cast<std::size_t>(layer)]);
    const T step = static_cast<T>(options_.step);
    for (std::int64_t e = 0; e < grad_x.numel(); ++e) {
      const T total = gv[e] - step * gx[e];
      gg[e] = -total;
      gv[e] = momentum * total;
    }
  });
}

}  // namespace longseq
