// Reference linear attention in the quadratic form, in double (kernels/reference.h). Key log
// scales are applied as they are written: the key features are exp(c_j) phi(k_j) and the states
// exp(m) (S, z) are formed explicitly; a final state is stored at log scale max(m, max_j c_j), a
// gradient of the initial state at log scale 0.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/common/linear_attention_math.h"
#include "kernels/reference.h"
#include "kernels/reference/values.h"

namespace longseq::reference {

namespace {

// One (batch, head) worth of inputs and state, as doubles.
struct Problem {
  std::int64_t heads = 0;  // B * H
  std::int64_t length = 0;
  std::int64_t dk = 0;
  std::int64_t dv = 0;
  bool causal = false;
  double eps = 0.0;
  LinearAttentionFeatureMap feature_map = LinearAttentionFeatureMap::elu_plus_one;
  std::vector<double> features_q, features_k;  // phi(q), exp(c) phi(k)
  std::vector<double> q, k, v;
  std::vector<double> key_scale;      // exp(c_j) per (head, position); 1 without log scales
  std::vector<double> key_log_scale;  // c_j, empty without log scales
  std::vector<double> s, z;           // initial state (true values), zero when undefined
  std::vector<double> log_scale;      // m of the initial state per head (-inf when undefined)

  [[nodiscard]] bool visible(std::int64_t i, std::int64_t j) const { return !causal || j <= i; }
  // phi(q_i) . phi(k_j) of head h.
  [[nodiscard]] double score(std::int64_t h, std::int64_t i, std::int64_t j) const {
    double sum = 0.0;
    for (std::int64_t a = 0; a < dk; ++a) {
      sum += features_q[(h * length + i) * dk + a] * features_k[(h * length + j) * dk + a];
    }
    return sum;
  }
};

std::vector<double> state_values(const char* op, const Tensor& tensor, std::int64_t count) {
  return tensor.defined() ? values_of(op, tensor)
                          : std::vector<double>(static_cast<std::size_t>(count), 0.0);
}

// exp(log_scale) (s, z) of a state; `log_scale` receives its log scale per head (-inf for an
// undefined state, 0 for one without).
void true_state(const char* op, const LinearAttentionState& state, std::int64_t heads,
                std::vector<double>& s, std::vector<double>& z, std::vector<double>& log_scale) {
  const double none = state.defined() ? 0.0 : -std::numeric_limits<double>::infinity();
  log_scale = state.log_scale.defined()
                  ? values_of(op, state.log_scale)
                  : std::vector<double>(static_cast<std::size_t>(heads), none);
  if (!state.log_scale.defined()) {
    return;
  }
  const std::size_t per_s = s.size() / static_cast<std::size_t>(heads);
  const std::size_t per_z = z.size() / static_cast<std::size_t>(heads);
  for (std::size_t e = 0; e < s.size(); ++e) {
    s[e] *= std::exp(log_scale[e / per_s]);
  }
  for (std::size_t e = 0; e < z.size(); ++e) {
    z[e] *= std::exp(log_scale[e / per_z]);
  }
}

Problem read_problem(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                     const LinearAttentionOptions& options, const LinearAttentionState& initial) {
  Problem p;
  p.heads = q.size(0) * q.size(1);
  p.length = q.size(2);
  p.dk = q.size(3);
  p.dv = v.size(3);
  p.causal = options.causal;
  p.eps = options.eps;
  p.feature_map = options.feature_map;
  check_shape(op, "k", k, q.shape());
  check_shape(op, "v", v, {q.size(0), q.size(1), p.length, p.dv});
  p.q = values_of(op, q);
  p.k = values_of(op, k);
  p.v = values_of(op, v);
  p.key_scale.assign(static_cast<std::size_t>(p.heads * p.length), 1.0);
  if (options.key_log_scale.defined()) {
    check_shape(op, "key_log_scale", options.key_log_scale, {q.size(0), q.size(1), p.length});
    p.key_log_scale = values_of(op, options.key_log_scale);
    for (std::size_t j = 0; j < p.key_scale.size(); ++j) {
      p.key_scale[j] = std::exp(p.key_log_scale[j]);
    }
  }
  for (const double x : p.q) {
    p.features_q.push_back(key_feature(p.feature_map, x));
  }
  for (std::size_t e = 0; e < p.k.size(); ++e) {
    p.features_k.push_back(p.key_scale[e / static_cast<std::size_t>(p.dk)] *
                           key_feature(p.feature_map, p.k[e]));
  }
  p.s = state_values(op, initial.s, p.heads * p.dk * p.dv);
  p.z = state_values(op, initial.z, p.heads * p.dk);
  true_state(op, initial, p.heads, p.s, p.z, p.log_scale);
  return p;
}

// Numerator (dv values) and denominator of position i of head h.
double readout(const Problem& p, std::int64_t h, std::int64_t i, std::vector<double>& numerator) {
  double den = p.eps;
  for (std::int64_t c = 0; c < p.dv; ++c) {
    numerator[c] = 0.0;
  }
  for (std::int64_t a = 0; a < p.dk; ++a) {
    const double feature = p.features_q[(h * p.length + i) * p.dk + a];
    den += feature * p.z[h * p.dk + a];
    for (std::int64_t c = 0; c < p.dv; ++c) {
      numerator[c] += feature * p.s[(h * p.dk + a) * p.dv + c];
    }
  }
  for (std::int64_t j = 0; j < p.length; ++j) {
    if (!p.visible(i, j)) {
      continue;
    }
    const double score = p.score(h, i, j);
    den += score;
    for (std::int64_t c = 0; c < p.dv; ++c) {
      numerator[c] += score * p.v[(h * p.length + j) * p.dv + c];
    }
  }
  return den;
}

// final = initial + sum_j phi(k_j) v_j^T (and z likewise).
void store_final(const char* op, const Problem& p, const LinearAttentionState& final) {
  if (!final.defined()) {
    return;
  }
  std::vector<double> s = p.s;
  std::vector<double> z = p.z;
  for (std::int64_t h = 0; h < p.heads; ++h) {
    for (std::int64_t j = 0; j < p.length; ++j) {
      for (std::int64_t a = 0; a < p.dk; ++a) {
        const double feature = p.features_k[(h * p.length + j) * p.dk + a];
        z[h * p.dk + a] += feature;
        for (std::int64_t c = 0; c < p.dv; ++c) {
          s[(h * p.dk + a) * p.dv + c] += feature * p.v[(h * p.length + j) * p.dv + c];
        }
      }
    }
  }
  if (final.log_scale.defined()) {
    std::vector<double> log_scale = p.log_scale;
    for (std::int64_t h = 0; h < p.heads; ++h) {
      for (std::int64_t j = 0; j < p.length; ++j) {
        log_scale[h] = std::max(log_scale[h], p.key_log_scale[h * p.length + j]);
      }
      // The zero state stays zero at log scale -inf.
      const double factor = std::isinf(log_scale[h]) ? 1.0 : std::exp(-log_scale[h]);
      for (std::int64_t e = 0; e < p.dk * p.dv; ++e) {
        s[h * p.dk * p.dv + e] *= factor;
      }
      for (std::int64_t a = 0; a < p.dk; ++a) {
        z[h * p.dk + a] *= factor;
      }
    }
    store(op, final.log_scale, log_scale);
  }
  store(op, final.s, s);
  store(op, final.z, z);
}

}  // namespace

void linear_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                              const LinearAttentionOptions& options,
                              const LinearAttentionState& initial, const Tensor& out,
                              const LinearAttentionState& final) {
  constexpr const char* kOp = "reference::linear_attention_forward";
  const Problem p = read_problem(kOp, q, k, v, options, initial);
  if (out.defined()) {
    std::vector<double> result(static_cast<std::size_t>(p.heads * p.length * p.dv));
    std::vector<double> numerator(static_cast<std::size_t>(p.dv));
    for (std::int64_t h = 0; h < p.heads; ++h) {
      for (std::int64_t i = 0; i < p.length; ++i) {
        const double den = readout(p, h, i, numerator);
        for (std::int64_t c = 0; c < p.dv; ++c) {
          result[(h * p.length + i) * p.dv + c] = numerator[c] * inverse_normaliser(den, 0.0);
        }
      }
    }
    store(kOp, out, result);
  }
  store_final(kOp, p, final);
}

// With n_i, d_i the numerator and denominator, a_ij = phi(q_i) . phi(k_j), g_i = dL/d out_i:
//   dn_i = g_i / d_i, dd_i = -(g_i . out_i) / d_i, da_ij = dn_i . v_j + dd_i
//   dphi(q_i) = sum_j da_ij phi(k_j) + S_in dn_i + z_in dd_i
//   dphi(k_j) = sum_i da_ij phi(q_i) + G_S v_j + g_z,   dv_j = sum_i a_ij dn_i + G_S^T phi(k_j)
//   dS_in = G_S + sum_i phi(q_i) dn_i^T,   dz_in = g_z + sum_i phi(q_i) dd_i
// where (G_S, g_z) is the gradient of the final state.
void linear_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                               const Tensor& grad_out, const LinearAttentionOptions& options,
                               const LinearAttentionState& initial,
                               const LinearAttentionState& grad_final, const Tensor& grad_q,
                               const Tensor& grad_k, const Tensor& grad_v,
                               const LinearAttentionState& grad_initial) {
  constexpr const char* kOp = "reference::linear_attention_backward";
  const Problem p = read_problem(kOp, q, k, v, options, initial);
  const std::vector<double> g = values_of(kOp, grad_out);
  std::vector<double> grad_s = state_values(kOp, grad_final.s, p.heads * p.dk * p.dv);
  std::vector<double> grad_z = state_values(kOp, grad_final.z, p.heads * p.dk);
  std::vector<double> grad_log_scale;
  true_state(kOp, grad_final, p.heads, grad_s, grad_z, grad_log_scale);
  std::vector<double> dq(p.q.size(), 0.0);
  std::vector<double> dk(p.k.size(), 0.0);
  std::vector<double> dv(p.v.size(), 0.0);
  // Contributions of the final state's gradient to dk and dv.
  for (std::int64_t h = 0; h < p.heads; ++h) {
    for (std::int64_t j = 0; j < p.length; ++j) {
      for (std::int64_t a = 0; a < p.dk; ++a) {
        const std::int64_t ka = (h * p.length + j) * p.dk + a;
        double sum = grad_z[h * p.dk + a];
        for (std::int64_t c = 0; c < p.dv; ++c) {
          const double gs = grad_s[(h * p.dk + a) * p.dv + c];
          sum += gs * p.v[(h * p.length + j) * p.dv + c];
          dv[(h * p.length + j) * p.dv + c] += gs * p.features_k[ka];
        }
        dk[ka] += sum;
      }
    }
  }
  std::vector<double> numerator(static_cast<std::size_t>(p.dv));
  std::vector<double> dn(static_cast<std::size_t>(p.dv));
  for (std::int64_t h = 0; h < p.heads; ++h) {
    for (std::int64_t i = 0; i < p.length; ++i) {
      const double den = readout(p, h, i, numerator);
      double grad_dot_out = 0.0;
      for (std::int64_t c = 0; c < p.dv; ++c) {
        dn[c] = g[(h * p.length + i) * p.dv + c] / den;
        grad_dot_out += g[(h * p.length + i) * p.dv + c] * numerator[c] / den;
      }
      const double dd = -grad_dot_out / den;
      for (std::int64_t a = 0; a < p.dk; ++a) {
        const std::int64_t qa = (h * p.length + i) * p.dk + a;
        double sum = p.z[h * p.dk + a] * dd;
        for (std::int64_t c = 0; c < p.dv; ++c) {
          sum += p.s[(h * p.dk + a) * p.dv + c] * dn[c];
          grad_s[(h * p.dk + a) * p.dv + c] += p.features_q[qa] * dn[c];
        }
        grad_z[h * p.dk + a] += p.features_q[qa] * dd;
        dq[qa] += sum;
      }
      for (std::int64_t j = 0; j < p.length; ++j) {
        if (!p.visible(i, j)) {
          continue;
        }
        double da = dd;
        for (std::int64_t c = 0; c < p.dv; ++c) {
          da += dn[c] * p.v[(h * p.length + j) * p.dv + c];
        }
        const double a_ij = p.score(h, i, j);
        for (std::int64_t a = 0; a < p.dk; ++a) {
          dq[(h * p.length + i) * p.dk + a] += da * p.features_k[(h * p.length + j) * p.dk + a];
          dk[(h * p.length + j) * p.dk + a] += da * p.features_q[(h * p.length + i) * p.dk + a];
        }
        for (std::int64_t c = 0; c < p.dv; ++c) {
          dv[(h * p.length + j) * p.dv + c] += a_ij * dn[c];
        }
      }
    }
  }
  // Through phi: d/dx = dphi * phi'(x), and through the key scale exp(c_j).
  for (std::size_t i = 0; i < dq.size(); ++i) {
    dq[i] *= key_feature_derivative(p.feature_map, p.q[i]);
    dk[i] *= p.key_scale[i / static_cast<std::size_t>(p.dk)] *
             key_feature_derivative(p.feature_map, p.k[i]);
  }
  if (grad_q.defined()) {
    store(kOp, grad_q, dq);
  }
  if (grad_k.defined()) {
    store(kOp, grad_k, dk);
    store(kOp, grad_v, dv);
  }
  if (grad_initial.defined()) {
    store(kOp, grad_initial.s, grad_s);
    store(kOp, grad_initial.z, grad_z);
    if (grad_initial.log_scale.defined()) {
      store(kOp, grad_initial.log_scale,
            std::vector<double>(static_cast<std::size_t>(p.heads), 0.0));
    }
  }
}

}  // namespace longseq::reference
