// Reference softmax attention: the (Nq, Nk) score matrix of every (batch, head) materialised in
// double, the backward derived from the softmax Jacobian. It resolves the contract of
// kernels/attention.h on its own (it must not share the resolution it is meant to check).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/reference.h"
#include "kernels/reference/values.h"

namespace longseq::reference {

namespace {

constexpr double kNegativeInfinity = -std::numeric_limits<double>::infinity();

struct Geometry {
  std::int64_t batch = 0;
  std::int64_t query_heads = 0;
  std::int64_t kv_heads = 0;
  std::int64_t query_length = 0;
  std::int64_t key_length = 0;
  std::int64_t head_dim = 0;
  double scale = 0.0;
  bool causal = false;
  std::int64_t query_offset = 0;
  std::int64_t key_offset = 0;
  // Block mask (rows, columns) as bytes; empty when dense.
  std::vector<std::uint8_t> block_mask;
  std::int64_t mask_columns = 0;
  std::int64_t mask_block_q = 1;
  std::int64_t mask_block_k = 1;
};

Geometry resolve(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                 const AttentionOptions& options) {
  LONGSEQ_CHECK(q.rank() == 4 && k.rank() == 4 && v.rank() == 4,
                "[{}] q, k, v must be (B, H, N, D)", op);
  Geometry geometry;
  geometry.batch = q.size(0);
  geometry.query_heads = q.size(1);
  geometry.query_length = q.size(2);
  geometry.head_dim = q.size(3);
  geometry.kv_heads = k.size(1);
  geometry.key_length = k.size(2);
  check_shape(op, "k", k,
              {geometry.batch, geometry.kv_heads, geometry.key_length, geometry.head_dim});
  check_shape(op, "v", v, k.shape());
  LONGSEQ_CHECK(geometry.kv_heads > 0 && geometry.query_heads % geometry.kv_heads == 0,
                "[{}] query heads {} are not a multiple of key/value heads {}", op,
                geometry.query_heads, geometry.kv_heads);
  geometry.scale = options.scale != 0.0f ? static_cast<double>(options.scale)
                                         : 1.0 / std::sqrt(static_cast<double>(geometry.head_dim));
  geometry.causal = options.causal;
  geometry.key_offset = options.key_offset;
  // Bottom-right alignment by default: the last query sits at the position of the last key.
  geometry.query_offset = options.query_offset.has_value()
                              ? *options.query_offset
                              : options.key_offset + geometry.key_length - geometry.query_length;
  if (options.block_mask.defined()) {
    const Tensor& mask = options.block_mask;
    LONGSEQ_CHECK(mask.dtype() == DType::u8 && mask.rank() == 2 && mask.device() == Device::cpu &&
                      mask.is_contiguous(),
                  "[{}] block_mask must be a contiguous 2-D u8 CPU tensor, got {}", op,
                  mask.describe());
    geometry.mask_block_q = options.mask_block_q;
    geometry.mask_block_k = options.mask_block_k;
    LONGSEQ_CHECK(geometry.mask_block_q > 0 && geometry.mask_block_k > 0,
                  "[{}] mask blocks must be positive", op);
    const std::int64_t rows =
        (geometry.query_length + geometry.mask_block_q - 1) / geometry.mask_block_q;
    const std::int64_t columns =
        (geometry.key_length + geometry.mask_block_k - 1) / geometry.mask_block_k;
    check_shape(op, "block_mask", mask, {rows, columns});
    geometry.mask_columns = columns;
    const std::uint8_t* bytes = mask.data<std::uint8_t>();
    geometry.block_mask.assign(bytes, bytes + mask.numel());
  }
  return geometry;
}

// Whether query row i may see key column j: the causal rule on global positions and the block mask.
bool visible(const Geometry& geometry, std::int64_t i, std::int64_t j) {
  if (geometry.causal && geometry.key_offset + j > geometry.query_offset + i) {
    return false;
  }
  if (!geometry.block_mask.empty()) {
    const std::int64_t block =
        (i / geometry.mask_block_q) * geometry.mask_columns + j / geometry.mask_block_k;
    return geometry.block_mask[static_cast<std::size_t>(block)] != 0;
  }
  return true;
}

double dot(const double* a, const double* b, std::int64_t length) {
  double sum = 0.0;
  for (std::int64_t d = 0; d < length; ++d) {
    sum += a[d] * b[d];
  }
  return sum;
}

// Offsets (in elements) of the (batch, head) slices of q-like and k-like tensors.
std::int64_t query_slice(const Geometry& geometry, std::int64_t b, std::int64_t h) {
  return (b * geometry.query_heads + h) * geometry.query_length * geometry.head_dim;
}
std::int64_t key_slice(const Geometry& geometry, std::int64_t b, std::int64_t h) {
  const std::int64_t group = geometry.query_heads / geometry.kv_heads;
  return (b * geometry.kv_heads + h / group) * geometry.key_length * geometry.head_dim;
}

// For one (batch, head): probabilities (Nq, Nk), the softmax of each row over its visible scaled
// scores and 0 where hidden, and each row's natural-log log-sum-exp (-inf when it sees no key).
void attention_probabilities(const Geometry& geometry, const double* q, const double* k,
                             std::vector<double>& probabilities, std::vector<double>& lse) {
  const std::int64_t nq = geometry.query_length;
  const std::int64_t nk = geometry.key_length;
  const std::int64_t dim = geometry.head_dim;
  probabilities.assign(static_cast<std::size_t>(nq * nk), 0.0);
  lse.assign(static_cast<std::size_t>(nq), kNegativeInfinity);
  std::vector<double> scores(static_cast<std::size_t>(nk));
  for (std::int64_t i = 0; i < nq; ++i) {
    double row_max = kNegativeInfinity;
    for (std::int64_t j = 0; j < nk; ++j) {
      scores[j] = visible(geometry, i, j) ? geometry.scale * dot(q + i * dim, k + j * dim, dim)
                                          : kNegativeInfinity;
      row_max = std::max(row_max, scores[j]);
    }
    if (row_max == kNegativeInfinity) {
      continue;  // sees no key: probabilities 0, LSE -inf
    }
    double sum = 0.0;
    for (std::int64_t j = 0; j < nk; ++j) {
      if (scores[j] != kNegativeInfinity) {
        sum += std::exp(scores[j] - row_max);
      }
    }
    for (std::int64_t j = 0; j < nk; ++j) {
      if (scores[j] != kNegativeInfinity) {
        probabilities[i * nk + j] = std::exp(scores[j] - row_max) / sum;
      }
    }
    lse[i] = row_max + std::log(sum);
  }
}

}  // namespace

void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                       const AttentionOptions& options, const Tensor& out, const Tensor& lse) {
  const char* op = "reference::attention_forward";
  const Geometry geometry = resolve(op, q, k, v, options);
  check_shape(op, "out", out, q.shape());
  check_shape(op, "lse", lse, {geometry.batch, geometry.query_heads, geometry.query_length});
  const std::vector<double> q_values = values_of(op, q);  // (B, Hq, Nq, D)
  const std::vector<double> k_values = values_of(op, k);  // (B, Hkv, Nk, D)
  const std::vector<double> v_values = values_of(op, v);  // (B, Hkv, Nk, D)
  std::vector<double> out_values(q_values.size(), 0.0);   // (B, Hq, Nq, D)
  std::vector<double> lse_values;                         // (B, Hq, Nq)
  lse_values.reserve(static_cast<std::size_t>(lse.numel()));

  const std::int64_t nq = geometry.query_length;
  const std::int64_t nk = geometry.key_length;
  const std::int64_t dim = geometry.head_dim;
  std::vector<double> probabilities;
  std::vector<double> row_lse;
  for (std::int64_t b = 0; b < geometry.batch; ++b) {
    for (std::int64_t h = 0; h < geometry.query_heads; ++h) {
      const std::int64_t q_at = query_slice(geometry, b, h);
      const std::int64_t kv_at = key_slice(geometry, b, h);
      attention_probabilities(geometry, &q_values[q_at], &k_values[kv_at], probabilities, row_lse);
      for (std::int64_t i = 0; i < nq; ++i) {
        double* out_row = &out_values[q_at + i * dim];
        for (std::int64_t j = 0; j < nk; ++j) {
          const double p = probabilities[i * nk + j];
          const double* v_row = &v_values[kv_at + j * dim];
          for (std::int64_t d = 0; d < dim; ++d) {
            out_row[d] += p * v_row[d];
          }
        }
      }
      lse_values.insert(lse_values.end(), row_lse.begin(), row_lse.end());
    }
  }
  store(op, out, out_values);
  store(op, lse, lse_values);
}

void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& grad_out,
                        const AttentionOptions& options, const Tensor& grad_q, const Tensor& grad_k,
                        const Tensor& grad_v) {
  const char* op = "reference::attention_backward";
  const Geometry geometry = resolve(op, q, k, v, options);
  check_shape(op, "grad_out", grad_out, q.shape());
  check_shape(op, "grad_q", grad_q, q.shape());
  check_shape(op, "grad_k", grad_k, k.shape());
  check_shape(op, "grad_v", grad_v, k.shape());
  const std::vector<double> q_values = values_of(op, q);
  const std::vector<double> k_values = values_of(op, k);
  const std::vector<double> v_values = values_of(op, v);
  const std::vector<double> grad_out_values = values_of(op, grad_out);
  std::vector<double> grad_q_values(q_values.size(), 0.0);
  std::vector<double> grad_k_values(k_values.size(), 0.0);  // query heads of a group add up
  std::vector<double> grad_v_values(v_values.size(), 0.0);

  const std::int64_t nq = geometry.query_length;
  const std::int64_t nk = geometry.key_length;
  const std::int64_t dim = geometry.head_dim;
  std::vector<double> probabilities;
  std::vector<double> row_lse;
  std::vector<double> grad_probabilities(static_cast<std::size_t>(nk));
  for (std::int64_t b = 0; b < geometry.batch; ++b) {
    for (std::int64_t h = 0; h < geometry.query_heads; ++h) {
      const std::int64_t q_at = query_slice(geometry, b, h);
      const std::int64_t kv_at = key_slice(geometry, b, h);
      attention_probabilities(geometry, &q_values[q_at], &k_values[kv_at], probabilities, row_lse);
      for (std::int64_t i = 0; i < nq; ++i) {
        const double* p_row = &probabilities[i * nk];
        const double* q_row = &q_values[q_at + i * dim];
        const double* grad_out_row = &grad_out_values[q_at + i * dim];
        // dP_ij = dO_i . v_j, and the softmax Jacobian gives dS_ij = P_ij (dP_ij - sum_l P_il
        // dP_il).
        double weighted = 0.0;
        for (std::int64_t j = 0; j < nk; ++j) {
          grad_probabilities[j] =
              p_row[j] == 0.0 ? 0.0 : dot(grad_out_row, &v_values[kv_at + j * dim], dim);
          weighted += p_row[j] * grad_probabilities[j];
        }
        double* grad_q_row = &grad_q_values[q_at + i * dim];
        for (std::int64_t j = 0; j < nk; ++j) {
          if (p_row[j] == 0.0) {
            continue;
          }
          const double grad_score = p_row[j] * (grad_probabilities[j] - weighted);
          const double* k_row = &k_values[kv_at + j * dim];
          double* grad_k_row = &grad_k_values[kv_at + j * dim];
          double* grad_v_row = &grad_v_values[kv_at + j * dim];
          for (std::int64_t d = 0; d < dim; ++d) {
            grad_q_row[d] += geometry.scale * grad_score * k_row[d];
            grad_k_row[d] += geometry.scale * grad_score * q_row[d];
            grad_v_row[d] += p_row[j] * grad_out_row[d];
          }
        }
      }
    }
  }
  store(op, grad_q, grad_q_values);
  store(op, grad_k, grad_k_values);
  store(op, grad_v, grad_v_values);
}

}  // namespace longseq::reference
