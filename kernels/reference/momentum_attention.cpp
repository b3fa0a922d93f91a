// Reference momentum attention in the quadratic form, in double
// (kernels/reference/momentum_attention.h).
#include "kernels/reference/momentum_attention.h"

#include <cstdint>
#include <vector>

#include "kernels/common/momentum_attention_math.h"
#include "kernels/reference/values.h"

namespace longseq::reference {

namespace {

// All (batch, head) pairs worth of inputs and state, as doubles.
struct Problem {
  std::int64_t heads = 0;  // B * H
  std::int64_t length = 0;
  std::int64_t dk = 0;
  std::int64_t dv = 0;
  double momentum = 0.0;
  double scale = 0.0;  // a = gamma / (1 - mu)
  double eps = 0.0;
  std::vector<double> weights;                 // w_d, d = 0 .. N-1
  std::vector<double> features_q, features_k;  // phi(q), phi(k)
  std::vector<double> q, k, v;
  std::vector<double> c, d, z;  // initial state, zero when undefined

  // phi(q_i) . phi(k_j) of head h.
  [[nodiscard]] double score(std::int64_t h, std::int64_t i, std::int64_t j) const {
    double sum = 0.0;
    for (std::int64_t a = 0; a < dk; ++a) {
      sum += features_q[(h * length + i) * dk + a] * features_k[(h * length + j) * dk + a];
    }
    return sum;
  }
  [[nodiscard]] double fq(std::int64_t h, std::int64_t i, std::int64_t a) const {
    return features_q[(h * length + i) * dk + a];
  }
  [[nodiscard]] double fk(std::int64_t h, std::int64_t j, std::int64_t a) const {
    return features_k[(h * length + j) * dk + a];
  }
  [[nodiscard]] double value(std::int64_t h, std::int64_t j, std::int64_t col) const {
    return v[(h * length + j) * dv + col];
  }
  [[nodiscard]] std::int64_t matrix(std::int64_t h, std::int64_t a, std::int64_t col) const {
    return (h * dk + a) * dv + col;
  }
};

std::vector<double> state_values(const char* op, const Tensor& tensor, std::int64_t count) {
  return tensor.defined() ? values_of(op, tensor)
                          : std::vector<double>(static_cast<std::size_t>(count), 0.0);
}

Problem read_problem(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                     const MomentumAttentionOptions& options,
                     const MomentumAttentionState& initial) {
  Problem p;
  p.heads = q.size(0) * q.size(1);
  p.length = q.size(2);
  p.dk = q.size(3);
  p.dv = v.size(3);
  p.momentum = options.momentum;
  p.scale = momentum_scale<double>(options.momentum, options.step);
  p.eps = options.eps;
  check_shape(op, "k", k, q.shape());
  check_shape(op, "v", v, {q.size(0), q.size(1), p.length, p.dv});
  for (std::int64_t d = 0; d < p.length; ++d) {
    p.weights.push_back(momentum_key_weight<double>(options.momentum, options.step, d));
  }
  p.q = values_of(op, q);
  p.k = values_of(op, k);
  p.v = values_of(op, v);
  for (const double x : p.q) {
    p.features_q.push_back(elu_feature(x));
  }
  for (const double x : p.k) {
    p.features_k.push_back(elu_feature(x));
  }
  p.c = state_values(op, initial.c, p.heads * p.dk * p.dv);
  p.d = state_values(op, initial.d, p.heads * p.dk * p.dv);
  p.z = state_values(op, initial.z, p.heads * p.dk);
  return p;
}

// Numerator (dv values) and denominator of position i of head h.
double readout(const Problem& p, std::int64_t h, std::int64_t i, std::vector<double>& numerator) {
  const double decay = momentum_power<double>(p.momentum, i + 2);
  double den = p.eps;
  for (std::int64_t col = 0; col < p.dv; ++col) {
    numerator[col] = 0.0;
  }
  for (std::int64_t a = 0; a < p.dk; ++a) {
    const double feature = p.fq(h, i, a);
    den += feature * p.z[h * p.dk + a];
    for (std::int64_t col = 0; col < p.dv; ++col) {
      numerator[col] += feature * momentum_readout(p.scale, decay, p.c[p.matrix(h, a, col)],
                                                   p.d[p.matrix(h, a, col)]);
    }
  }
  for (std::int64_t j = 0; j <= i; ++j) {
    const double score = p.score(h, i, j);
    den += score;
    for (std::int64_t col = 0; col < p.dv; ++col) {
      numerator[col] += p.weights[i - j] * score * p.value(h, j, col);
    }
  }
  return den;
}

// final = (C_in + sum_j phi(k_j) v_j^T, mu^N D_in + sum_j mu^(N-1-j) phi(k_j) v_j^T,
// z_in + sum_j phi(k_j)).
void store_final(const char* op, const Problem& p, const MomentumAttentionState& final) {
  if (!final.defined()) {
    return;
  }
  std::vector<double> c = p.c;
  std::vector<double> d = p.d;
  std::vector<double> z = p.z;
  const double decay = momentum_power<double>(p.momentum, p.length);
  for (double& x : d) {
    x *= decay;
  }
  for (std::int64_t h = 0; h < p.heads; ++h) {
    for (std::int64_t j = 0; j < p.length; ++j) {
      const double key_decay = momentum_power<double>(p.momentum, p.length - 1 - j);
      for (std::int64_t a = 0; a < p.dk; ++a) {
        const double feature = p.fk(h, j, a);
        z[h * p.dk + a] += feature;
        for (std::int64_t col = 0; col < p.dv; ++col) {
          c[p.matrix(h, a, col)] += feature * p.value(h, j, col);
          d[p.matrix(h, a, col)] += key_decay * feature * p.value(h, j, col);
        }
      }
    }
  }
  store(op, final.c, c);
  store(op, final.d, d);
  store(op, final.z, z);
}

}  // namespace

void momentum_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                const MomentumAttentionOptions& options,
                                const MomentumAttentionState& initial, const Tensor& out,
                                const MomentumAttentionState& final) {
  constexpr const char* kOp = "reference::momentum_attention_forward";
  const Problem p = read_problem(kOp, q, k, v, options, initial);
  if (out.defined()) {
    std::vector<double> result(static_cast<std::size_t>(p.heads * p.length * p.dv));
    std::vector<double> numerator(static_cast<std::size_t>(p.dv));
    for (std::int64_t h = 0; h < p.heads; ++h) {
      for (std::int64_t i = 0; i < p.length; ++i) {
        const double den = readout(p, h, i, numerator);
        for (std::int64_t col = 0; col < p.dv; ++col) {
          result[(h * p.length + i) * p.dv + col] = numerator[col] / den;
        }
      }
    }
    store(kOp, out, result);
  }
  store_final(kOp, p, final);
}

// With n_i, d_i the numerator and denominator, a_ij = phi(q_i) . phi(k_j), g_i = dL/d out_i,
// dn_i = g_i / d_i, dd_i = -(g_i . out_i) / d_i, da_ij = w_{i-j} dn_i . v_j + dd_i (j <= i), and
// (G_C, G_D, g_z) the gradient of the final state:
//   dphi(q_i) = sum_j da_ij phi(k_j) + a (C_in - mu^(i+2) D_in) dn_i + z_in dd_i
//   dphi(k_j) = sum_i da_ij phi(q_i) + (G_C + mu^(N-1-j) G_D) v_j + g_z
//   dv_j      = sum_i w_{i-j} a_ij dn_i + (G_C + mu^(N-1-j) G_D)^T phi(k_j)
//   dC_in = G_C + a sum_i phi(q_i) dn_i^T,   dD_in = mu^N G_D - a sum_i mu^(i+2) phi(q_i) dn_i^T,
//   dz_in = g_z + sum_i phi(q_i) dd_i
void momentum_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                 const Tensor& grad_out, const MomentumAttentionOptions& options,
                                 const MomentumAttentionState& initial,
                                 const MomentumAttentionState& grad_final, const Tensor& grad_q,
                                 const Tensor& grad_k, const Tensor& grad_v,
                                 const MomentumAttentionState& grad_initial) {
  constexpr const char* kOp = "reference::momentum_attention_backward";
  const Problem p = read_problem(kOp, q, k, v, options, initial);
  const std::vector<double> g = values_of(kOp, grad_out);
  const std::vector<double> grad_c_final = state_values(kOp, grad_final.c, p.heads * p.dk * p.dv);
  const std::vector<double> grad_d_final = state_values(kOp, grad_final.d, p.heads * p.dk * p.dv);
  std::vector<double> grad_c = grad_c_final;
  std::vector<double> grad_d = grad_d_final;
  std::vector<double> grad_z = state_values(kOp, grad_final.z, p.heads * p.dk);
  const double total_decay = momentum_power<double>(p.momentum, p.length);
  for (double& x : grad_d) {
    x *= total_decay;
  }
  std::vector<double> dq(p.q.size(), 0.0);
  std::vector<double> dk(p.k.size(), 0.0);
  std::vector<double> dv(p.v.size(), 0.0);
  // Contributions of the final state's gradient to dk and dv.
  for (std::int64_t h = 0; h < p.heads; ++h) {
    for (std::int64_t j = 0; j < p.length; ++j) {
      const double key_decay = momentum_power<double>(p.momentum, p.length - 1 - j);
      for (std::int64_t a = 0; a < p.dk; ++a) {
        const std::int64_t ka = (h * p.length + j) * p.dk + a;
        double sum = grad_z[h * p.dk + a];
        for (std::int64_t col = 0; col < p.dv; ++col) {
          const double gs =
              grad_c_final[p.matrix(h, a, col)] + key_decay * grad_d_final[p.matrix(h, a, col)];
          sum += gs * p.value(h, j, col);
          dv[(h * p.length + j) * p.dv + col] += gs * p.features_k[ka];
        }
        dk[ka] += sum;
      }
    }
  }
  std::vector<double> numerator(static_cast<std::size_t>(p.dv));
  std::vector<double> dn(static_cast<std::size_t>(p.dv));
  for (std::int64_t h = 0; h < p.heads; ++h) {
    for (std::int64_t i = 0; i < p.length; ++i) {
      const double decay = momentum_power<double>(p.momentum, i + 2);
      const double den = readout(p, h, i, numerator);
      double grad_dot_out = 0.0;
      for (std::int64_t col = 0; col < p.dv; ++col) {
        dn[col] = g[(h * p.length + i) * p.dv + col] / den;
        grad_dot_out += g[(h * p.length + i) * p.dv + col] * numerator[col] / den;
      }
      const double dd = -grad_dot_out / den;
      for (std::int64_t a = 0; a < p.dk; ++a) {
        const std::int64_t qa = (h * p.length + i) * p.dk + a;
        double sum = p.z[h * p.dk + a] * dd;
        for (std::int64_t col = 0; col < p.dv; ++col) {
          const std::int64_t m = p.matrix(h, a, col);
          sum += momentum_readout(p.scale, decay, p.c[m], p.d[m]) * dn[col];
          grad_c[m] += p.scale * p.features_q[qa] * dn[col];
          grad_d[m] -= p.scale * decay * p.features_q[qa] * dn[col];
        }
        grad_z[h * p.dk + a] += p.features_q[qa] * dd;
        dq[qa] += sum;
      }
      for (std::int64_t j = 0; j <= i; ++j) {
        const double weight = p.weights[i - j];
        double dot = 0.0;
        for (std::int64_t col = 0; col < p.dv; ++col) {
          dot += dn[col] * p.value(h, j, col);
        }
        const double da = weight * dot + dd;
        const double a_ij = p.score(h, i, j);
        for (std::int64_t a = 0; a < p.dk; ++a) {
          dq[(h * p.length + i) * p.dk + a] += da * p.fk(h, j, a);
          dk[(h * p.length + j) * p.dk + a] += da * p.fq(h, i, a);
        }
        for (std::int64_t col = 0; col < p.dv; ++col) {
          dv[(h * p.length + j) * p.dv + col] += weight * a_ij * dn[col];
        }
      }
    }
  }
  // Through phi: d/dx = dphi * phi'(x).
  for (std::size_t i = 0; i < dq.size(); ++i) {
    dq[i] *= elu_feature_derivative(p.q[i]);
    dk[i] *= elu_feature_derivative(p.k[i]);
  }
  if (grad_q.defined()) {
    store(kOp, grad_q, dq);
  }
  if (grad_k.defined()) {
    store(kOp, grad_k, dk);
    store(kOp, grad_v, dv);
  }
  if (grad_initial.defined()) {
    store(kOp, grad_initial.c, grad_c);
    store(kOp, grad_initial.d, grad_d);
    store(kOp, grad_initial.z, grad_z);
  }
}

}  // namespace longseq::reference
