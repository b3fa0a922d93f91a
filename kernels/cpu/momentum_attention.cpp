// Momentum attention on the CPU, chunked (kernels/momentum_attention.h, MECHANISMS.md section 4).
//
// Each (batch, head) is one task; its sequence is cut into chunks of C = kMomentumAttentionChunk
// positions. As in linear attention (kernels/cpu/linear_attention.cpp) values are augmented with a
// column of ones, V' = [V | 1], and the plain state with its normaliser, C' = [C | z], so that the
// plain readout and the denominator come out of one product; the decayed state D (Dk x Dv) has no
// normaliser. Per chunk of L valid positions, with F = phi(Q), G = phi(K), a = gamma / (1 - mu),
// the weight table w_d = a (1 - mu^(d+1)) and the decays e_t = a mu^(t+2), m_s = mu^(L-1-s):
//   forward   A = F G^T masked to s <= t;  AW = A o w_{t-s}
//             num_t = a (F C)_t - e_t (F D)_t + (AW V)_t;   den_t = (F z)_t + sum_s A_ts
//             C' += G^T V';   D = mu^L D + G^T (m o V)
// The backward never stores a per-position state. With dn_t = g_t / den_t and dd_t = dL/d den_t
// (kernels/common/linear_attention_math.h), the readout rows Ws = [a dn | dd], Wd = -e_t dn and
// B = (dn V^T) o w + dd 1^T masked:
//   forward scan  dF = Ws C'^T + Wd D^T + B G
//   reverse scan  dG = V' RC'^T + (m o V) RD^T + B^T F;   dV = G RC' + (m o G) RD + AW^T dn
//                 RC' += F^T Ws;   RD = mu^L RD + F^T Wd
// where (RC', RD) are the gradients of the state at the end of the chunk: from the later chunks
// and the gradient of the final state. Only 1 / den and dL/d den of every position carry from one
// scan to the other. Every product runs on the tile micro-kernel (kernels/cpu/tile_product.h).
#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/backends.h"
#include "kernels/common/momentum_attention_math.h"
#include "kernels/cpu/tile_product.h"

namespace longseq::cpu {

namespace {

constexpr std::int64_t kChunk = kMomentumAttentionChunk;
static_assert(kChunk % kTileColumnMultiple == 0);

std::int64_t padded(std::int64_t columns) {
  return (columns + kTileColumnMultiple - 1) / kTileColumnMultiple * kTileColumnMultiple;
}

// dst (cols x rows, row stride dst_stride) = src^T for src (rows x cols, row stride src_stride).
void transpose(const float* src, std::int64_t rows, std::int64_t cols, std::int64_t src_stride,
               float* dst, std::int64_t dst_stride) {
  for (std::int64_t c = 0; c < cols; ++c) {
    for (std::int64_t r = 0; r < rows; ++r) {
      dst[c * dst_stride + r] = src[r * src_stride + c];
    }
  }
}

// A state or its gradient as padded matrices: C' = [C | z] (Dk' x Dv') and D (Dk' x Dv').
struct PaddedState {
  std::vector<float> plain;
  std::vector<float> decayed;
};

// The per-thread buffers of one (batch, head) task and the steps of the chunked algorithm.
class ChunkWorkspace {
 public:
  explicit ChunkWorkspace(const MomentumAttentionShape& shape)
      : dk_(shape.key_dim),
        dv_(shape.value_dim),
        dkp_(padded(shape.key_dim)),
        dvp_(padded(shape.value_dim + 1)),
        eps_(shape.eps),
        momentum_(shape.momentum),
        scale_(momentum_scale(shape.momentum, shape.step)),
        weights_(kChunk),
        query_decay_(kChunk),
        features_q_(kChunk * dkp_),
        features_k_(kChunk * dkp_),
        features_k_t_(dkp_ * kChunk),
        decayed_keys_(kChunk * dkp_),
        values_(kChunk * dvp_),
        values_t_(dvp_ * kChunk),
        decayed_values_(kChunk * dvp_),
        scores_(kChunk * kChunk),
        weighted_scores_(kChunk * kChunk),
        grad_scores_(kChunk * kChunk),
        numerator_(kChunk * dvp_),
        decayed_readout_(kChunk * dvp_),
        den_(kChunk),
        readout_grad_(kChunk * dvp_),
        state_grad_rows_(kChunk * dvp_),
        decay_grad_rows_(kChunk * dvp_),
        grad_features_(kChunk * dkp_),
        grad_values_(kChunk * dvp_),
        state_{std::vector<float>(dkp_ * dvp_), std::vector<float>(dkp_ * dvp_)},
        grad_state_{std::vector<float>(dkp_ * dvp_), std::vector<float>(dkp_ * dvp_)},
        state_t_(dvp_ * dkp_) {
    for (std::int64_t t = 0; t < kChunk; ++t) {
      weights_[t] = momentum_key_weight(shape.momentum, shape.step, t);
      query_decay_[t] = scale_ * momentum_power(shape.momentum, t + 2);
    }
  }

  // The given state, or 0.
  void load_state(const MomentumAttentionState& state, std::int64_t bh, PaddedState& into) const {
    std::fill(into.plain.begin(), into.plain.end(), 0.0f);
    std::fill(into.decayed.begin(), into.decayed.end(), 0.0f);
    if (!state.defined()) {
      return;
    }
    const float* c = state.c.data<float>() + bh * dk_ * dv_;
    const float* d = state.d.data<float>() + bh * dk_ * dv_;
    const float* z = state.z.data<float>() + bh * dk_;
    for (std::int64_t a = 0; a < dk_; ++a) {
      std::copy(c + a * dv_, c + (a + 1) * dv_, into.plain.data() + a * dvp_);
      std::copy(d + a * dv_, d + (a + 1) * dv_, into.decayed.data() + a * dvp_);
      into.plain[a * dvp_ + dv_] = z[a];
    }
  }

  void store_state(const PaddedState& from, std::int64_t bh,
                   const MomentumAttentionState& state) const {
    if (!state.defined()) {
      return;
    }
    float* c = state.c.data<float>() + bh * dk_ * dv_;
    float* d = state.d.data<float>() + bh * dk_ * dv_;
    float* z = state.z.data<float>() + bh * dk_;
    for (std::int64_t a = 0; a < dk_; ++a) {
      std::copy(from.plain.data() + a * dvp_, from.plain.data() + a * dvp_ + dv_, c + a * dv_);
      std::copy(from.decayed.data() + a * dvp_, from.decayed.data() + a * dvp_ + dv_, d + a * dv_);
      z[a] = from.plain[a * dvp_ + dv_];
    }
  }

  PaddedState& state() { return state_; }
  PaddedState& grad_state() { return grad_state_; }

  // F, G, V', m o G and m o V of the chunk of `length` positions at q, k, v; with `scores`, also
  // V'^T, A = F G^T masked and AW.
  void load_chunk(const float* q, const float* k, const float* v, std::int64_t length,
                  bool scores) {
    length_ = length;
    load_features(q, length, features_q_);
    load_features(k, length, features_k_);
    std::fill(values_.begin(), values_.end(), 0.0f);
    std::fill(decayed_values_.begin(), decayed_values_.end(), 0.0f);
    std::fill(decayed_keys_.begin(), decayed_keys_.end(), 0.0f);
    for (std::int64_t s = 0; s < length; ++s) {
      const float decay = momentum_power(momentum_, length - 1 - s);
      std::copy(v + s * dv_, v + (s + 1) * dv_, values_.data() + s * dvp_);
      values_[s * dvp_ + dv_] = 1.0f;
      for (std::int64_t c = 0; c < dv_; ++c) {
        decayed_values_[s * dvp_ + c] = decay * v[s * dv_ + c];
      }
      for (std::int64_t a = 0; a < dk_; ++a) {
        decayed_keys_[s * dkp_ + a] = decay * features_k_[s * dkp_ + a];
      }
    }
    if (scores) {
      transpose(values_.data(), kChunk, dvp_, dvp_, values_t_.data(), kChunk);
      transpose(features_k_.data(), kChunk, dkp_, dkp_, features_k_t_.data(), kChunk);
      tile_product(kChunk, kChunk, dk_, {features_q_.data(), dkp_, 1}, features_k_t_.data(), kChunk,
                   {scores_.data(), kChunk}, false);
      for (std::int64_t t = 0; t < kChunk; ++t) {
        for (std::int64_t s = 0; s < kChunk; ++s) {
          const bool visible = s <= t;
          scores_[t * kChunk + s] = visible ? scores_[t * kChunk + s] : 0.0f;
          weighted_scores_[t * kChunk + s] =
              visible ? weights_[t - s] * scores_[t * kChunk + s] : 0.0f;
        }
      }
    }
  }

  // C' += G^T V';  D = mu^L D + G^T (m o V).
  void add_keys_to_state() {
    tile_product(dk_, dvp_, kChunk, {features_k_.data(), 1, dkp_}, values_.data(), dvp_,
                 {state_.plain.data(), dvp_}, true);
    const float decay = momentum_power(momentum_, length_);
    for (float& x : state_.decayed) {
      x *= decay;
    }
    tile_product(dk_, dvp_, kChunk, {features_k_.data(), 1, dkp_}, decayed_values_.data(), dvp_,
                 {state_.decayed.data(), dvp_}, true);
  }

  // num_t (first Dv columns of NUM) and den_t - eps.
  void numerator() {
    tile_product(kChunk, dvp_, dk_, {features_q_.data(), dkp_, 1}, state_.plain.data(), dvp_,
                 {numerator_.data(), dvp_}, false);
    tile_product(kChunk, dvp_, dk_, {features_q_.data(), dkp_, 1}, state_.decayed.data(), dvp_,
                 {decayed_readout_.data(), dvp_}, false);
    for (std::int64_t t = 0; t < kChunk; ++t) {
      float row_sum = 0.0f;
      for (std::int64_t s = 0; s <= t; ++s) {
        row_sum += scores_[t * kChunk + s];
      }
      float* row = numerator_.data() + t * dvp_;
      den_[t] = row[dv_] + row_sum;
      for (std::int64_t c = 0; c < dv_; ++c) {
        row[c] = scale_ * row[c] - query_decay_[t] * decayed_readout_[t * dvp_ + c];
      }
    }
    tile_product(kChunk, dvp_, kChunk, {weighted_scores_.data(), kChunk, 1}, values_.data(), dvp_,
                 {numerator_.data(), dvp_}, true);
  }

  // out = num / den for the valid rows.
  void write_output(float* out) const {
    for (std::int64_t t = 0; t < length_; ++t) {
      const float* row = numerator_.data() + t * dvp_;
      const float inverse = inverse_normaliser(den_[t], eps_);
      for (std::int64_t c = 0; c < dv_; ++c) {
        out[t * dv_ + c] = row[c] * inverse;
      }
    }
  }

  // From the numerators and the output gradient g: 1 / den and dL/d den of each row (kept for the
  // reverse scan), and the readout gradient rows.
  void readout_gradient(const float* grad_out, float* inverse_den, float* grad_den) {
    for (std::int64_t t = 0; t < length_; ++t) {
      const float* row = numerator_.data() + t * dvp_;
      const float inverse = inverse_normaliser(den_[t], eps_);
      float dot = 0.0f;
      for (std::int64_t c = 0; c < dv_; ++c) {
        dot += grad_out[t * dv_ + c] * row[c];
      }
      inverse_den[t] = inverse;
      grad_den[t] = normaliser_gradient(dot * inverse, inverse);
    }
    rebuild_readout_gradient(grad_out, inverse_den, grad_den, true);
  }

  // [dn | dd], Ws = [a dn | dd] and Wd = -e_t dn from what the forward scan kept (rows past the
  // chunk 0); with `scores`, also B.
  void rebuild_readout_gradient(const float* grad_out, const float* inverse_den,
                                const float* grad_den, bool scores) {
    std::fill(readout_grad_.begin(), readout_grad_.end(), 0.0f);
    std::fill(state_grad_rows_.begin(), state_grad_rows_.end(), 0.0f);
    std::fill(decay_grad_rows_.begin(), decay_grad_rows_.end(), 0.0f);
    for (std::int64_t t = 0; t < length_; ++t) {
      float* row = readout_grad_.data() + t * dvp_;
      float* state_row = state_grad_rows_.data() + t * dvp_;
      float* decay_row = decay_grad_rows_.data() + t * dvp_;
      for (std::int64_t c = 0; c < dv_; ++c) {
        row[c] = grad_out[t * dv_ + c] * inverse_den[t];
        state_row[c] = scale_ * row[c];
        decay_row[c] = -query_decay_[t] * row[c];
      }
      row[dv_] = grad_den[t];
      state_row[dv_] = grad_den[t];
    }
    if (scores) {
      tile_product(kChunk, kChunk, dv_, {readout_grad_.data(), dvp_, 1}, values_t_.data(), kChunk,
                   {grad_scores_.data(), kChunk}, false);
      for (std::int64_t t = 0; t < kChunk; ++t) {
        const float grad_den_t = readout_grad_[t * dvp_ + dv_];
        for (std::int64_t s = 0; s < kChunk; ++s) {
          float& b = grad_scores_[t * kChunk + s];
          b = s <= t ? weights_[t - s] * b + grad_den_t : 0.0f;
        }
      }
    }
  }

  // dq = (Ws C'^T + Wd D^T + B G) * phi'(q) for the valid rows.
  void write_grad_q(const float* q, float* grad_q) {
    transpose(state_.plain.data(), dkp_, dvp_, dvp_, state_t_.data(), dkp_);
    tile_product(kChunk, dkp_, dv_ + 1, {state_grad_rows_.data(), dvp_, 1}, state_t_.data(), dkp_,
                 {grad_features_.data(), dkp_}, false);
    transpose(state_.decayed.data(), dkp_, dvp_, dvp_, state_t_.data(), dkp_);
    tile_product(kChunk, dkp_, dv_, {decay_grad_rows_.data(), dvp_, 1}, state_t_.data(), dkp_,
                 {grad_features_.data(), dkp_}, true);
    tile_product(kChunk, dkp_, kChunk, {grad_scores_.data(), kChunk, 1}, features_k_.data(), dkp_,
                 {grad_features_.data(), dkp_}, true);
    write_feature_gradient(q, grad_q);
  }

  // dk = (V' RC'^T + (m o V) RD^T + B^T F) * phi'(k) and dv = G RC' + (m o G) RD + AW^T dn.
  void write_grad_kv(const float* k, float* grad_k, float* grad_v) {
    transpose(grad_state_.plain.data(), dkp_, dvp_, dvp_, state_t_.data(), dkp_);
    tile_product(kChunk, dkp_, dv_ + 1, {values_.data(), dvp_, 1}, state_t_.data(), dkp_,
                 {grad_features_.data(), dkp_}, false);
    transpose(grad_state_.decayed.data(), dkp_, dvp_, dvp_, state_t_.data(), dkp_);
    tile_product(kChunk, dkp_, dv_, {decayed_values_.data(), dvp_, 1}, state_t_.data(), dkp_,
                 {grad_features_.data(), dkp_}, true);
    tile_product(kChunk, dkp_, kChunk, {grad_scores_.data(), 1, kChunk}, features_q_.data(), dkp_,
                 {grad_features_.data(), dkp_}, true);
    tile_product(kChunk, dvp_, dk_, {features_k_.data(), dkp_, 1}, grad_state_.plain.data(), dvp_,
                 {grad_values_.data(), dvp_}, false);
    tile_product(kChunk, dvp_, dk_, {decayed_keys_.data(), dkp_, 1}, grad_state_.decayed.data(),
                 dvp_, {grad_values_.data(), dvp_}, true);
    tile_product(kChunk, dvp_, kChunk, {weighted_scores_.data(), 1, kChunk}, readout_grad_.data(),
                 dvp_, {grad_values_.data(), dvp_}, true);
    write_feature_gradient(k, grad_k);
    for (std::int64_t s = 0; s < length_; ++s) {
      std::copy(grad_values_.data() + s * dvp_, grad_values_.data() + s * dvp_ + dv_,
                grad_v + s * dv_);
    }
  }

  // RC' += F^T Ws;  RD = mu^L RD + F^T Wd.
  void add_queries_to_grad_state() {
    tile_product(dk_, dvp_, kChunk, {features_q_.data(), 1, dkp_}, state_grad_rows_.data(), dvp_,
                 {grad_state_.plain.data(), dvp_}, true);
    const float decay = momentum_power(momentum_, length_);
    for (float& x : grad_state_.decayed) {
      x *= decay;
    }
    tile_product(dk_, dvp_, kChunk, {features_q_.data(), 1, dkp_}, decay_grad_rows_.data(), dvp_,
                 {grad_state_.decayed.data(), dvp_}, true);
  }

 private:
  // phi of `length` rows of x (row stride Dk) into kChunk x Dk' rows; the rest 0.
  void load_features(const float* x, std::int64_t length, std::vector<float>& features) const {
    std::fill(features.begin(), features.end(), 0.0f);
    for (std::int64_t i = 0; i < length; ++i) {
      for (std::int64_t a = 0; a < dk_; ++a) {
        features[i * dkp_ + a] = elu_feature(x[i * dk_ + a]);
      }
    }
  }

  // grad_x = dL/d phi(x) (in grad_features_) * phi'(x) for the valid rows.
  void write_feature_gradient(const float* x, float* grad_x) const {
    for (std::int64_t i = 0; i < length_; ++i) {
      for (std::int64_t a = 0; a < dk_; ++a) {
        grad_x[i * dk_ + a] = grad_features_[i * dkp_ + a] * elu_feature_derivative(x[i * dk_ + a]);
      }
    }
  }

  std::int64_t dk_, dv_, dkp_, dvp_;
  float eps_, momentum_, scale_;
  std::int64_t length_ = 0;                                    // valid rows of the chunk
  std::vector<float> weights_, query_decay_;                   // w_d, e_t (C)
  std::vector<float> features_q_, features_k_, features_k_t_;  // F, G (C x Dk'), G^T
  std::vector<float> decayed_keys_;                            // m o G (C x Dk')
  std::vector<float> values_, values_t_, decayed_values_;      // V', V'^T, m o V (C x Dv')
  std::vector<float> scores_, weighted_scores_, grad_scores_;  // A, AW, B (C x C)
  std::vector<float> numerator_, decayed_readout_, den_;       // NUM, F D (C x Dv'), den (C)
  std::vector<float> readout_grad_, state_grad_rows_;          // [dn | dd], Ws (C x Dv')
  std::vector<float> decay_grad_rows_;                         // Wd (C x Dv')
  std::vector<float> grad_features_, grad_values_;             // (C x Dk'), (C x Dv')
  PaddedState state_, grad_state_;                             // (C', D), (RC', RD)
  std::vector<float> state_t_;                                 // a transposed state
};

// Pointers of one (batch, head) task into (B, H, N, D) tensors.
struct HeadRows {
  std::int64_t length;
  std::int64_t dk;
  std::int64_t dv;
  std::int64_t bh;

  [[nodiscard]] const float* keys(const Tensor& t, std::int64_t p) const {
    return t.data<float>() + (bh * length + p) * dk;
  }
  [[nodiscard]] float* keys_out(const Tensor& t, std::int64_t p) const {
    return t.data<float>() + (bh * length + p) * dk;
  }
  [[nodiscard]] const float* values(const Tensor& t, std::int64_t p) const {
    return t.data<float>() + (bh * length + p) * dv;
  }
  [[nodiscard]] float* values_out(const Tensor& t, std::int64_t p) const {
    return t.data<float>() + (bh * length + p) * dv;
  }
  [[nodiscard]] std::int64_t chunk_length(std::int64_t p) const {
    return std::min(kChunk, length - p);
  }
  // The first position of the last chunk (0 for an empty sequence: no chunk).
  [[nodiscard]] std::int64_t last_chunk() const {
    return length > 0 ? (length - 1) / kChunk * kChunk : -kChunk;
  }
};

}  // namespace

void momentum_attention_forward(ComputeContext& context, const MomentumAttentionShape& shape,
                                const Tensor& q, const Tensor& k, const Tensor& v,
                                const MomentumAttentionState& initial, const Tensor& out,
                                const MomentumAttentionState& final) {
  const std::int64_t tasks = shape.batch * shape.heads;
  const bool with_output = out.defined();
#pragma omp parallel num_threads(context.cpu_threads())
  {
    ChunkWorkspace work(shape);
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t bh = 0; bh < tasks; ++bh) {
      const HeadRows rows{shape.length, shape.key_dim, shape.value_dim, bh};
      work.load_state(initial, bh, work.state());
      for (std::int64_t p = 0; p < shape.length; p += kChunk) {
        work.load_chunk(rows.keys(q, p), rows.keys(k, p), rows.values(v, p), rows.chunk_length(p),
                        with_output);
        if (with_output) {
          work.numerator();
          work.write_output(rows.values_out(out, p));
        }
        work.add_keys_to_state();
      }
      work.store_state(work.state(), bh, final);
    }
  }
}

void momentum_attention_backward(ComputeContext& context, const MomentumAttentionShape& shape,
                                 const Tensor& q, const Tensor& k, const Tensor& v,
                                 const Tensor& grad_out, const MomentumAttentionState& initial,
                                 const MomentumAttentionState& grad_final, const Tensor& grad_q,
                                 const Tensor& grad_k, const Tensor& grad_v,
                                 const MomentumAttentionState& grad_initial) {
  const std::int64_t tasks = shape.batch * shape.heads;
  const bool want_q = grad_q.defined();
  const bool want_kv = grad_k.defined();
  const bool want_initial = grad_initial.defined();
#pragma omp parallel num_threads(context.cpu_threads())
  {
    ChunkWorkspace work(shape);
    std::vector<float> inverse_den(static_cast<std::size_t>(shape.length));
    std::vector<float> grad_den(static_cast<std::size_t>(shape.length));
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t bh = 0; bh < tasks; ++bh) {
      const HeadRows rows{shape.length, shape.key_dim, shape.value_dim, bh};
      // Forward scan: the state before each chunk, the readout gradients, dq.
      work.load_state(initial, bh, work.state());
      for (std::int64_t p = 0; p < shape.length; p += kChunk) {
        work.load_chunk(rows.keys(q, p), rows.keys(k, p), rows.values(v, p), rows.chunk_length(p),
                        true);
        work.numerator();
        work.readout_gradient(rows.values(grad_out, p), inverse_den.data() + p,
                              grad_den.data() + p);
        if (want_q) {
          work.write_grad_q(rows.keys(q, p), rows.keys_out(grad_q, p));
        }
        work.add_keys_to_state();
      }
      // Reverse scan: the gradient of the state after each chunk, dk, dv; finally the gradient of
      // the initial state.
      work.load_state(grad_final, bh, work.grad_state());
      if (want_kv || want_initial) {
        for (std::int64_t p = rows.last_chunk(); p >= 0; p -= kChunk) {
          work.load_chunk(rows.keys(q, p), rows.keys(k, p), rows.values(v, p), rows.chunk_length(p),
                          want_kv);
          work.rebuild_readout_gradient(rows.values(grad_out, p), inverse_den.data() + p,
                                        grad_den.data() + p, want_kv);
          if (want_kv) {
            work.write_grad_kv(rows.keys(k, p), rows.keys_out(grad_k, p),
                               rows.values_out(grad_v, p));
          }
          work.add_queries_to_grad_state();
        }
      }
      work.store_state(work.grad_state(), bh, grad_initial);
    }
  }
}

void momentum_attention_step(ComputeContext& context, const MomentumAttentionShape& shape,
                             const Tensor& q, const Tensor& k, const Tensor& v,
                             const MomentumAttentionState& state, const Tensor& out) {
  const std::int64_t tasks = shape.batch * shape.heads;
  const std::int64_t dk = shape.key_dim;
  const std::int64_t dv = shape.value_dim;
  const float mu = shape.momentum;
  const float scale = momentum_scale(shape.momentum, shape.step);
#pragma omp parallel for num_threads(context.cpu_threads()) schedule(static)
  for (std::int64_t bh = 0; bh < tasks; ++bh) {
    const float* qh = q.data<float>() + bh * dk;
    const float* kh = k.data<float>() + bh * dk;
    const float* vh = v.data<float>() + bh * dv;
    float* c = state.c.data<float>() + bh * dk * dv;
    float* d = state.d.data<float>() + bh * dk * dv;
    float* z = state.z.data<float>() + bh * dk;
    float* o = out.data<float>() + bh * dv;
    std::fill(o, o + dv, 0.0f);
    float den = 0.0f;
    for (std::int64_t a = 0; a < dk; ++a) {
      const float key = elu_feature(kh[a]);
      const float query = elu_feature(qh[a]);
      z[a] += key;
      den += query * z[a];
      for (std::int64_t col = 0; col < dv; ++col) {
        const float update = key * vh[col];
        c[a * dv + col] += update;
        d[a * dv + col] = mu * d[a * dv + col] + update;
        o[col] += query * momentum_readout(scale, mu, c[a * dv + col], d[a * dv + col]);
      }
    }
    const float inverse = inverse_normaliser(den, shape.eps);
    for (std::int64_t col = 0; col < dv; ++col) {
      o[col] *= inverse;
    }
  }
}

}  // namespace longseq::cpu
