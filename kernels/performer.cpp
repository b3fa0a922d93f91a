#include "kernels/performer.h"

#include <cmath>
#include <vector>

#include "kernels/backends.h"
#include "kernels/common/performer_math.h"
#include "kernels/gemm.h"
#include "kernels/tensor_checks.h"
#include "runtime/philox.h"

namespace longseq {

namespace {

// Philox streams of one epoch: the Gaussian blocks, and the Gaussian vectors whose norms the
// orthogonal rows take.
constexpr std::uint64_t kEntryStream = 0;
constexpr std::uint64_t kNormStream = 1;

std::uint64_t stream_of(std::uint64_t epoch, std::uint64_t which) { return epoch * 2 + which; }

// Rows of one d x d block, orthonormalised in place by modified Gram-Schmidt. A Gaussian block is
// singular with probability 0; a row that loses all its norm would still stay finite (norm 0).
void orthonormalise_rows(std::vector<double>& block, std::int64_t d) {
  for (std::int64_t r = 0; r < d; ++r) {
    double* row = block.data() + r * d;
    for (std::int64_t earlier = 0; earlier < r; ++earlier) {
      const double* other = block.data() + earlier * d;
      double dot = 0.0;
      for (std::int64_t c = 0; c < d; ++c) {
        dot += row[c] * other[c];
      }
      for (std::int64_t c = 0; c < d; ++c) {
        row[c] -= dot * other[c];
      }
    }
    double norm = 0.0;
    for (std::int64_t c = 0; c < d; ++c) {
      norm += row[c] * row[c];
    }
    const double inverse = norm > 0.0 ? 1.0 / std::sqrt(norm) : 0.0;
    for (std::int64_t c = 0; c < d; ++c) {
      row[c] *= inverse;
    }
  }
}

// x (B, H, N, d) as (B H N, d) and features as (B H N, m); checked.
struct FeatureRows {
  std::int64_t rows;
  std::int64_t features;
  std::int64_t head_dim;
};

FeatureRows checked_rows(const char* op, const Tensor& x, const Tensor& projection,
                         const Tensor& features) {
  LONGSEQ_CHECK(x.rank() == 4 && projection.rank() == 2,
                "[{}] x must be (B, H, N, d) and the projection (m, d), got {} and {}", op,
                x.describe(), projection.describe());
  const FeatureRows rows{x.size(0) * x.size(1) * x.size(2), projection.size(0), x.size(3)};
  check_contiguous(op, "x", x);
  LONGSEQ_REQUIRE(x.dtype() == DType::f32, "[{}] takes fp32 inputs, got {}", op, x.describe());
  check_tensor(op, "projection", projection, {rows.features, rows.head_dim}, DType::f32,
               x.device());
  check_tensor(op, "features", features, {x.size(0), x.size(1), x.size(2), rows.features},
               DType::f32, x.device());
  return rows;
}

}  // namespace

Tensor performer_projection(const PerformerProjectionOptions& options) {
  const std::int64_t m = options.features;
  const std::int64_t d = options.head_dim;
  LONGSEQ_REQUIRE(m >= 1 && d >= 1, "[performer_projection] needs m >= 1 and d >= 1, got {} and {}",
                  m, d);
  const std::uint64_t entries = stream_of(options.epoch, kEntryStream);
  const std::uint64_t norms = stream_of(options.epoch, kNormStream);
  const Tensor projection = Tensor::empty({m, d}, DType::f32);
  float* w = projection.data<float>();
  std::vector<double> block(static_cast<std::size_t>(d * d));
  for (std::int64_t first = 0; first < m; first += d) {
    for (std::int64_t e = 0; e < d * d; ++e) {
      block[e] = random_normal(options.seed, entries, static_cast<std::uint64_t>(first * d + e));
    }
    if (options.orthogonal) {
      orthonormalise_rows(block, d);
      for (std::int64_t r = 0; r < d; ++r) {
        double norm = 0.0;
        for (std::int64_t c = 0; c < d; ++c) {
          const double g =
              random_normal(options.seed, norms, static_cast<std::uint64_t>((first + r) * d + c));
          norm += g * g;
        }
        for (std::int64_t c = 0; c < d; ++c) {
          block[r * d + c] *= std::sqrt(norm);
        }
      }
    }
    for (std::int64_t r = 0; r < d && first + r < m; ++r) {
      for (std::int64_t c = 0; c < d; ++c) {
        w[(first + r) * d + c] = static_cast<float>(block[r * d + c]);
      }
    }
  }
  return projection;
}

void performer_features_forward(ComputeContext& context, const Tensor& x, const Tensor& projection,
                                const Tensor& features, const Tensor& log_scale) {
  constexpr const char* kOp = "performer_features_forward";
  const FeatureRows rows = checked_rows(kOp, x, projection, features);
  check_tensor(kOp, "log_scale", log_scale, {x.size(0), x.size(1), x.size(2)}, DType::f32,
               x.device());
  if (rows.rows == 0) {
    return;
  }
  // Raw projections w_r . x of every row into the features, finished row by row.
  gemm(context, x.reshape({rows.rows, rows.head_dim}), false, projection, true,
       features.reshape({rows.rows, rows.features}));
  const auto kernel =
      x.device() == Device::cpu ? cpu::performer_feature_rows : cuda::performer_feature_rows;
  kernel(context, x, features, log_scale);
}

void performer_features_backward(ComputeContext& context, const Tensor& x, const Tensor& projection,
                                 const Tensor& features, const Tensor& grad_features,
                                 const Tensor& grad_x) {
  constexpr const char* kOp = "performer_features_backward";
  const FeatureRows rows = checked_rows(kOp, x, projection, features);
  check_like(kOp, "grad_features", grad_features, features);
  check_like(kOp, "grad_x", grad_x, x);
  if (rows.rows == 0) {
    return;
  }
  const Tensor grad_logits = Tensor::empty({rows.rows, rows.features}, DType::f32, x.device());
  const auto kernel = x.device() == Device::cpu ? cpu::performer_feature_grad_rows
                                                : cuda::performer_feature_grad_rows;
  // grad_logits = dL/dl; grad_x = the norm term; then grad_x += d^(-1/4) dL/dl W.
  kernel(context, x, features, grad_features, grad_logits, grad_x);
  gemm(context, grad_logits, false, projection, false, grad_x.reshape({rows.rows, rows.head_dim}),
       performer_scales(rows.features, rows.head_dim).input, 1.0f);
}

double performer_features_flops(std::int64_t rows, std::int64_t features, std::int64_t head_dim) {
  return 2.0 * static_cast<double>(rows) * static_cast<double>(features) *
         static_cast<double>(head_dim);
}

}  // namespace longseq
