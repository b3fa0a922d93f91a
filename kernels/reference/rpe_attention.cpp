// rpe attention by direct O(N^2) double loops over the score matrix s_ij = c_{j - i} phi(q_i) .
// phi(k_j) (kernels/rpe_attention.h): no Toeplitz product, no FFT, no column blocks.
#include "kernels/rpe_attention.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/common/rpe_attention_math.h"
#include "kernels/reference/values.h"

namespace longseq::reference {

namespace {

struct Problem {
  std::int64_t batch, heads, length, dk, dv;
  std::vector<double> q, k, v, c;  // c (H, 2N - 1): the weights of every offset

  [[nodiscard]] double weight(std::int64_t h, std::int64_t i, std::int64_t j) const {
    return c[h * (2 * length - 1) + j - i + length - 1];
  }
  [[nodiscard]] const double* row(const std::vector<double>& x, std::int64_t bh, std::int64_t i,
                                  std::int64_t d) const {
    return x.data() + (bh * length + i) * d;
  }
  [[nodiscard]] double kernel(std::int64_t bh, std::int64_t i, std::int64_t j) const {
    const double* qi = row(q, bh, i, dk);
    const double* kj = row(k, bh, j, dk);
    double sum = 0.0;
    for (std::int64_t a = 0; a < dk; ++a) {
      sum += elu_feature(qi[a]) * elu_feature(kj[a]);
    }
    return sum;
  }
};

Problem problem_of(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                   const Tensor& b, bool causal) {
  Problem p{q.size(0),        q.size(1),        q.size(2),        q.size(3),       v.size(3),
            values_of(op, q), values_of(op, k), values_of(op, v), values_of(op, b)};
  check_shape(op, "k", k, q.shape());
  check_shape(op, "v", v, {p.batch, p.heads, p.length, p.dv});
  check_shape(op, "b", b, {p.heads, 2 * p.length - 1});
  const std::int64_t entries = 2 * p.length - 1;
  for (std::int64_t h = 0; h < p.heads; ++h) {
    double* row = p.c.data() + h * entries;
    double shift = -std::numeric_limits<double>::infinity();
    for (std::int64_t e = 0; e < entries; ++e) {
      if (rpe_offset_used(rpe_offset(e, p.length), causal)) {
        shift = std::max(shift, row[e]);
      }
    }
    for (std::int64_t e = 0; e < entries; ++e) {
      row[e] = rpe_offset_used(rpe_offset(e, p.length), causal) ? rpe_weight(row[e], shift) : 0.0;
    }
  }
  return p;
}

}  // namespace

void rpe_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& b,
                           const RpeAttentionOptions& options, const Tensor& out,
                           const Tensor& denominator) {
  constexpr const char* kOp = "reference::rpe_attention_forward";
  const Problem p = problem_of(kOp, q, k, v, b, options.causal);
  std::vector<double> o(static_cast<std::size_t>(p.batch * p.heads * p.length * p.dv), 0.0);
  std::vector<double> dens(static_cast<std::size_t>(p.batch * p.heads * p.length), 0.0);
  for (std::int64_t bh = 0; bh < p.batch * p.heads; ++bh) {
    const std::int64_t h = bh % p.heads;
    for (std::int64_t i = 0; i < p.length; ++i) {
      std::vector<double> num(static_cast<std::size_t>(p.dv), 0.0);
      double den = 0.0;
      for (std::int64_t j = 0; j < p.length; ++j) {
        const double s = p.weight(h, i, j) * p.kernel(bh, i, j);
        den += s;
        for (std::int64_t e = 0; e < p.dv; ++e) {
          num[e] += s * p.row(p.v, bh, j, p.dv)[e];
        }
      }
      const double clamped = rpe_clamped_denominator(den, static_cast<double>(options.eps));
      for (std::int64_t e = 0; e < p.dv; ++e) {
        o[(bh * p.length + i) * p.dv + e] = num[e] / clamped;
      }
      dens[bh * p.length + i] = den;
    }
  }
  store(kOp, out, o);
  if (denominator.defined()) {
    store(kOp, denominator, dens);
  }
}

void rpe_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& b,
                            const Tensor& grad_out, const RpeAttentionOptions& options,
                            const Tensor& grad_q, const Tensor& grad_k, const Tensor& grad_v,
                            const Tensor& grad_b) {
  constexpr const char* kOp = "reference::rpe_attention_backward";
  const Problem p = problem_of(kOp, q, k, v, b, options.causal);
  const std::vector<double> g = values_of(kOp, grad_out);
  const double eps = options.eps;
  std::vector<double> gq(p.q.size(), 0.0);
  std::vector<double> gk(p.k.size(), 0.0);
  std::vector<double> gv(p.v.size(), 0.0);
  std::vector<double> gb(p.c.size(), 0.0);
  const std::int64_t entries = 2 * p.length - 1;
  for (std::int64_t bh = 0; bh < p.batch * p.heads; ++bh) {
    const std::int64_t h = bh % p.heads;
    for (std::int64_t i = 0; i < p.length; ++i) {
      // The forward of row i again: den and out.
      double den = 0.0;
      std::vector<double> num(static_cast<std::size_t>(p.dv), 0.0);
      for (std::int64_t j = 0; j < p.length; ++j) {
        const double s = p.weight(h, i, j) * p.kernel(bh, i, j);
        den += s;
        for (std::int64_t e = 0; e < p.dv; ++e) {
          num[e] += s * p.row(p.v, bh, j, p.dv)[e];
        }
      }
      const double clamped = rpe_clamped_denominator(den, eps);
      const double* gi = g.data() + (bh * p.length + i) * p.dv;
      double grad_dot_out = 0.0;
      for (std::int64_t e = 0; e < p.dv; ++e) {
        grad_dot_out += gi[e] * num[e] / clamped;
      }
      const double grad_den = rpe_denominator_gradient(grad_dot_out, den, eps);
      const double* qi = p.row(p.q, bh, i, p.dk);
      for (std::int64_t j = 0; j < p.length; ++j) {
        const double* vj = p.row(p.v, bh, j, p.dv);
        const double* kj = p.row(p.k, bh, j, p.dk);
        const double weight = p.weight(h, i, j);
        const double kernel = p.kernel(bh, i, j);
        double grad_s = grad_den;  // dL/d s_ij
        for (std::int64_t e = 0; e < p.dv; ++e) {
          grad_s += gi[e] * vj[e] / clamped;
          gv[(bh * p.length + j) * p.dv + e] += weight * kernel * gi[e] / clamped;
        }
        gb[h * entries + j - i + p.length - 1] += weight * kernel * grad_s;
        const double grad_kernel = weight * grad_s;
        for (std::int64_t a = 0; a < p.dk; ++a) {
          gq[(bh * p.length + i) * p.dk + a] +=
              grad_kernel * elu_feature(kj[a]) * elu_feature_derivative(qi[a]);
          gk[(bh * p.length + j) * p.dk + a] +=
              grad_kernel * elu_feature(qi[a]) * elu_feature_derivative(kj[a]);
        }
      }
    }
  }
  if (grad_q.defined()) {
    store(kOp, grad_q, gq);
  }
  if (grad_k.defined()) {
    store(kOp, grad_k, gk);
  }
  if (grad_v.defined()) {
    store(kOp, grad_v, gv);
  }
  if (grad_b.defined()) {
    store(kOp, grad_b, gb);
  }
}

}  // namespace longseq::reference
