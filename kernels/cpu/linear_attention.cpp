// Linear attention on the CPU, chunked (kernels/linear_attention.h, MECHANISMS.md section 3).
//
// Each (batch, head) is one task; its sequence is cut into chunks of C = kLinearAttentionChunk
// positions. Values are augmented with a column of ones, V' = [V | 1] (C x Dv'), and the state
// with its normaliser, S' = [S | z] (Dk x Dv'), so that numerator and denominator come out of the
// same products (Dv' = Dv + 1 padded to the tile width). Per chunk, with F = phi(Q), G = phi(K):
//   causal forward    A = F G^T masked to j <= i;  NUM' = F S' + A V';  S' += G^T V'
//   non-causal        S' = initial + sum over all chunks of G^T V' first; then NUM' = F S'
// The backward never stores a per-position state. With W' = [dL/d num | dL/d den] per position
// (kernels/common/linear_attention_math.h):
//   forward scan      rebuilds NUM' and W'; dF = W' S'^T + B G with B = W' V'^T masked; S' += G^T
//   V' reverse scan      dG = V' R'^T + B^T F;  dV' = G R' + A^T W';  R' += F^T W'
// where R' = [R | r] is the sum of F^T W' over the later positions plus the gradient of the final
// state. Only 1 / den and dL/d den of every position (2 floats) carry from one scan to the other.
// Every product runs on the tile micro-kernel (kernels/cpu/tile_product.h).
#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/backends.h"
#include "kernels/common/linear_attention_math.h"
#include "kernels/cpu/tile_product.h"

namespace longseq::cpu {

namespace {

constexpr std::int64_t kChunk = kLinearAttentionChunk;
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

// Zeroes the entries above the diagonal of a kChunk x kChunk matrix (keeps j <= i).
void mask_upper(float* scores) {
  for (std::int64_t i = 0; i < kChunk; ++i) {
    std::fill(scores + i * kChunk + i + 1, scores + (i + 1) * kChunk, 0.0f);
  }
}

// The per-thread buffers of one (batch, head) task and the steps of the chunked algorithm.
class ChunkWorkspace {
 public:
  explicit ChunkWorkspace(const LinearAttentionShape& shape)
      : dk_(shape.key_dim),
        dv_(shape.value_dim),
        dkp_(padded(shape.key_dim)),
        dvp_(padded(shape.value_dim + 1)),
        eps_(shape.eps),
        causal_(shape.causal),
        features_q_(kChunk * dkp_),
        features_k_(kChunk * dkp_),
        features_k_t_(dkp_ * kChunk),
        values_(kChunk * dvp_),
        values_t_(dvp_ * kChunk),
        scores_(kChunk * kChunk),
        weights_(kChunk * kChunk),
        numerator_(kChunk * dvp_),
        readout_grad_(kChunk * dvp_),
        grad_features_(kChunk * dkp_),
        grad_values_(kChunk * dvp_),
        state_(dkp_ * dvp_),
        grad_state_(dkp_ * dvp_),
        state_t_(dvp_ * dkp_) {}

  // S' = the given state, or 0.
  void load_state(const LinearAttentionState& state, std::int64_t bh, std::vector<float>& into) {
    std::fill(into.begin(), into.end(), 0.0f);
    if (!state.defined()) {
      return;
    }
    const float* s = state.s.data<float>() + bh * dk_ * dv_;
    const float* z = state.z.data<float>() + bh * dk_;
    for (std::int64_t a = 0; a < dk_; ++a) {
      std::copy(s + a * dv_, s + (a + 1) * dv_, into.data() + a * dvp_);
      into[a * dvp_ + dv_] = z[a];
    }
  }

  void store_state(const std::vector<float>& from, std::int64_t bh,
                   const LinearAttentionState& state) const {
    if (!state.defined()) {
      return;
    }
    float* s = state.s.data<float>() + bh * dk_ * dv_;
    float* z = state.z.data<float>() + bh * dk_;
    for (std::int64_t a = 0; a < dk_; ++a) {
      std::copy(from.data() + a * dvp_, from.data() + a * dvp_ + dv_, s + a * dv_);
      z[a] = from[a * dvp_ + dv_];
    }
  }

  std::vector<float>& state() { return state_; }
  std::vector<float>& grad_state() { return grad_state_; }

  // phi of `length` rows of x (row stride Dk) into kChunk x Dk' rows; the rest 0.
  void load_features(const float* x, std::int64_t length, std::vector<float>& features) const {
    std::fill(features.begin(), features.end(), 0.0f);
    for (std::int64_t i = 0; i < length; ++i) {
      for (std::int64_t a = 0; a < dk_; ++a) {
        features[i * dkp_ + a] = elu_feature(x[i * dk_ + a]);
      }
    }
  }

  // F, G and V' of the chunk of `length` positions at q, k, v; with `scores`, also G^T and
  // A = F G^T masked.
  void load_chunk(const float* q, const float* k, const float* v, std::int64_t length,
                  bool scores) {
    load_features(q, length, features_q_);
    load_features(k, length, features_k_);
    std::fill(values_.begin(), values_.end(), 0.0f);
    for (std::int64_t i = 0; i < length; ++i) {
      std::copy(v + i * dv_, v + (i + 1) * dv_, values_.data() + i * dvp_);
      values_[i * dvp_ + dv_] = 1.0f;
    }
    if (scores) {
      transpose(features_k_.data(), kChunk, dkp_, dkp_, features_k_t_.data(), kChunk);
      tile_product(kChunk, kChunk, dk_, {features_q_.data(), dkp_, 1}, features_k_t_.data(), kChunk,
                   {scores_.data(), kChunk}, false);
      mask_upper(scores_.data());
    }
  }

  // S' += G^T V'.
  void add_keys_to_state() {
    tile_product(dk_, dvp_, kChunk, {features_k_.data(), 1, dkp_}, values_.data(), dvp_,
                 {state_.data(), dvp_}, true);
  }

  // NUM' = F S' (+ A V' when causal).
  void numerator() {
    tile_product(kChunk, dvp_, dk_, {features_q_.data(), dkp_, 1}, state_.data(), dvp_,
                 {numerator_.data(), dvp_}, false);
    if (causal_) {
      tile_product(kChunk, dvp_, kChunk, {scores_.data(), kChunk, 1}, values_.data(), dvp_,
                   {numerator_.data(), dvp_}, true);
    }
  }

  // out = num / den for `length` rows.
  void write_output(std::int64_t length, float* out) const {
    for (std::int64_t i = 0; i < length; ++i) {
      const float* row = numerator_.data() + i * dvp_;
      const float inverse = inverse_normaliser(row[dv_], eps_);
      for (std::int64_t c = 0; c < dv_; ++c) {
        out[i * dv_ + c] = row[c] * inverse;
      }
    }
  }

  // From NUM' and the output gradient g: 1 / den and dL/d den of each row (kept for the reverse
  // scan), and W'.
  void readout_gradient(const float* grad_out, std::int64_t length, float* inverse_den,
                        float* grad_den) {
    for (std::int64_t i = 0; i < length; ++i) {
      const float* row = numerator_.data() + i * dvp_;
      const float inverse = inverse_normaliser(row[dv_], eps_);
      float dot = 0.0f;
      for (std::int64_t c = 0; c < dv_; ++c) {
        dot += grad_out[i * dv_ + c] * row[c];
      }
      inverse_den[i] = inverse;
      grad_den[i] = normaliser_gradient(dot * inverse, inverse);
    }
    rebuild_readout_gradient(grad_out, length, inverse_den, grad_den);
  }

  // W' = [g / den | dL/d den] from what the forward scan kept; rows past `length` 0.
  void rebuild_readout_gradient(const float* grad_out, std::int64_t length,
                                const float* inverse_den, const float* grad_den) {
    std::fill(readout_grad_.begin(), readout_grad_.end(), 0.0f);
    for (std::int64_t i = 0; i < length; ++i) {
      float* row = readout_grad_.data() + i * dvp_;
      for (std::int64_t c = 0; c < dv_; ++c) {
        row[c] = grad_out[i * dv_ + c] * inverse_den[i];
      }
      row[dv_] = grad_den[i];
    }
    if (causal_) {
      // B = W' V'^T masked to j <= i.
      transpose(values_.data(), kChunk, dvp_, dvp_, values_t_.data(), kChunk);
      tile_product(kChunk, kChunk, dv_ + 1, {readout_grad_.data(), dvp_, 1}, values_t_.data(),
                   kChunk, {weights_.data(), kChunk}, false);
      mask_upper(weights_.data());
    }
  }

  // dq = (W' S'^T + B G) * phi'(q) for `length` rows.
  void write_grad_q(const float* q, std::int64_t length, float* grad_q) {
    transpose(state_.data(), dkp_, dvp_, dvp_, state_t_.data(), dkp_);
    tile_product(kChunk, dkp_, dv_ + 1, {readout_grad_.data(), dvp_, 1}, state_t_.data(), dkp_,
                 {grad_features_.data(), dkp_}, false);
    if (causal_) {
      tile_product(kChunk, dkp_, kChunk, {weights_.data(), kChunk, 1}, features_k_.data(), dkp_,
                   {grad_features_.data(), dkp_}, true);
    }
    write_feature_gradient(q, length, grad_q);
  }

  // dk = (V' R'^T + B^T F) * phi'(k) and dv = (G R' + A^T W')[:, :Dv] for `length` rows.
  void write_grad_kv(const float* k, std::int64_t length, float* grad_k, float* grad_v) {
    transpose(grad_state_.data(), dkp_, dvp_, dvp_, state_t_.data(), dkp_);
    tile_product(kChunk, dkp_, dv_ + 1, {values_.data(), dvp_, 1}, state_t_.data(), dkp_,
                 {grad_features_.data(), dkp_}, false);
    tile_product(kChunk, dvp_, dk_, {features_k_.data(), dkp_, 1}, grad_state_.data(), dvp_,
                 {grad_values_.data(), dvp_}, false);
    if (causal_) {
      tile_product(kChunk, dkp_, kChunk, {weights_.data(), 1, kChunk}, features_q_.data(), dkp_,
                   {grad_features_.data(), dkp_}, true);
      tile_product(kChunk, dvp_, kChunk, {scores_.data(), 1, kChunk}, readout_grad_.data(), dvp_,
                   {grad_values_.data(), dvp_}, true);
    }
    write_feature_gradient(k, length, grad_k);
    for (std::int64_t i = 0; i < length; ++i) {
      std::copy(grad_values_.data() + i * dvp_, grad_values_.data() + i * dvp_ + dv_,
                grad_v + i * dv_);
    }
  }

  // R' += F^T W'.
  void add_queries_to_grad_state() {
    tile_product(dk_, dvp_, kChunk, {features_q_.data(), 1, dkp_}, readout_grad_.data(), dvp_,
                 {grad_state_.data(), dvp_}, true);
  }

 private:
  // grad_x = dL/d phi(x) (in grad_features_) * phi'(x).
  void write_feature_gradient(const float* x, std::int64_t length, float* grad_x) const {
    for (std::int64_t i = 0; i < length; ++i) {
      for (std::int64_t a = 0; a < dk_; ++a) {
        grad_x[i * dk_ + a] = grad_features_[i * dkp_ + a] * elu_feature_derivative(x[i * dk_ + a]);
      }
    }
  }

  std::int64_t dk_, dv_, dkp_, dvp_;
  float eps_;
  bool causal_;
  std::vector<float> features_q_, features_k_, features_k_t_;  // F, G (C x Dk'), G^T
  std::vector<float> values_, values_t_;                       // V' (C x Dv'), V'^T
  std::vector<float> scores_, weights_;                        // A, B (C x C)
  std::vector<float> numerator_, readout_grad_;                // NUM', W' (C x Dv')
  std::vector<float> grad_features_, grad_values_;             // (C x Dk'), (C x Dv')
  std::vector<float> state_, grad_state_;                      // S', R' (Dk' x Dv')
  std::vector<float> state_t_;                                 // S'^T or R'^T
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
};

// S' += G^T V' over every chunk.
void add_all_keys(ChunkWorkspace& work, const HeadRows& rows, const Tensor& q, const Tensor& k,
                  const Tensor& v) {
  for (std::int64_t p = 0; p < rows.length; p += kChunk) {
    work.load_chunk(rows.keys(q, p), rows.keys(k, p), rows.values(v, p), rows.chunk_length(p),
                    false);
    work.add_keys_to_state();
  }
}

}  // namespace

void linear_attention_forward(ComputeContext& context, const LinearAttentionShape& shape,
                              const Tensor& q, const Tensor& k, const Tensor& v,
                              const LinearAttentionState& initial, const Tensor& out,
                              const LinearAttentionState& final) {
  const std::int64_t tasks = shape.batch * shape.heads;
  const bool with_output = out.defined();
#pragma omp parallel num_threads(context.cpu_threads())
  {
    ChunkWorkspace work(shape);
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t bh = 0; bh < tasks; ++bh) {
      const HeadRows rows{shape.length, shape.key_dim, shape.value_dim, bh};
      work.load_state(initial, bh, work.state());
      if (!shape.causal || !with_output) {
        add_all_keys(work, rows, q, k, v);
      }
      if (with_output) {
        for (std::int64_t p = 0; p < shape.length; p += kChunk) {
          const std::int64_t length = rows.chunk_length(p);
          work.load_chunk(rows.keys(q, p), rows.keys(k, p), rows.values(v, p), length,
                          shape.causal);
          work.numerator();
          work.write_output(length, rows.values_out(out, p));
          if (shape.causal) {
            work.add_keys_to_state();
          }
        }
      }
      work.store_state(work.state(), bh, final);
    }
  }
}

void linear_attention_backward(ComputeContext& context, const LinearAttentionShape& shape,
                               const Tensor& q, const Tensor& k, const Tensor& v,
                               const Tensor& grad_out, const LinearAttentionState& initial,
                               const LinearAttentionState& grad_final, const Tensor& grad_q,
                               const Tensor& grad_k, const Tensor& grad_v,
                               const LinearAttentionState& grad_initial) {
  const std::int64_t tasks = shape.batch * shape.heads;
  const bool want_q = grad_q.defined();
  const bool want_kv = grad_k.defined();
  const bool want_initial = grad_initial.defined();
  const bool causal = shape.causal;
#pragma omp parallel num_threads(context.cpu_threads())
  {
    ChunkWorkspace work(shape);
    std::vector<float> inverse_den(static_cast<std::size_t>(shape.length));
    std::vector<float> grad_den(static_cast<std::size_t>(shape.length));
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t bh = 0; bh < tasks; ++bh) {
      const HeadRows rows{shape.length, shape.key_dim, shape.value_dim, bh};
      // Forward scan: S' before each chunk, W', dq.
      work.load_state(initial, bh, work.state());
      if (!causal) {
        add_all_keys(work, rows, q, k, v);
      }
      for (std::int64_t p = 0; p < shape.length; p += kChunk) {
        const std::int64_t length = rows.chunk_length(p);
        work.load_chunk(rows.keys(q, p), rows.keys(k, p), rows.values(v, p), length, causal);
        work.numerator();
        work.readout_gradient(rows.values(grad_out, p), length, inverse_den.data() + p,
                              grad_den.data() + p);
        if (want_q) {
          work.write_grad_q(rows.keys(q, p), length, rows.keys_out(grad_q, p));
        }
        if (causal) {
          work.add_keys_to_state();
        }
      }
      // Reverse scan: R' after each chunk, dk, dv; finally R' is the gradient of the initial state.
      work.load_state(grad_final, bh, work.grad_state());
      const bool sum_first = !causal || !want_kv;
      if (sum_first && (want_kv || want_initial)) {
        for (std::int64_t p = 0; p < shape.length; p += kChunk) {
          const std::int64_t length = rows.chunk_length(p);
          work.load_chunk(rows.keys(q, p), rows.keys(k, p), rows.values(v, p), length, false);
          work.rebuild_readout_gradient(rows.values(grad_out, p), length, inverse_den.data() + p,
                                        grad_den.data() + p);
          work.add_queries_to_grad_state();
        }
      }
      if (want_kv) {
        const std::int64_t last = (shape.length - 1) / kChunk * kChunk;
        for (std::int64_t p = last; p >= 0 && shape.length > 0; p -= kChunk) {
          const std::int64_t length = rows.chunk_length(p);
          work.load_chunk(rows.keys(q, p), rows.keys(k, p), rows.values(v, p), length, causal);
          work.rebuild_readout_gradient(rows.values(grad_out, p), length, inverse_den.data() + p,
                                        grad_den.data() + p);
          work.write_grad_kv(rows.keys(k, p), length, rows.keys_out(grad_k, p),
                             rows.values_out(grad_v, p));
          if (causal) {
            work.add_queries_to_grad_state();
          }
        }
      }
      work.store_state(work.grad_state(), bh, grad_initial);
    }
  }
}

void linear_attention_step(ComputeContext& context, const LinearAttentionShape& shape,
                           const Tensor& q, const Tensor& k, const Tensor& v,
                           const LinearAttentionState& state, const Tensor& out) {
  const std::int64_t tasks = shape.batch * shape.heads;
  const std::int64_t dk = shape.key_dim;
  const std::int64_t dv = shape.value_dim;
#pragma omp parallel for num_threads(context.cpu_threads()) schedule(static)
  for (std::int64_t bh = 0; bh < tasks; ++bh) {
    const float* qh = q.data<float>() + bh * dk;
    const float* kh = k.data<float>() + bh * dk;
    const float* vh = v.data<float>() + bh * dv;
    float* s = state.s.data<float>() + bh * dk * dv;
    float* z = state.z.data<float>() + bh * dk;
    float* o = out.data<float>() + bh * dv;
    std::fill(o, o + dv, 0.0f);
    float den = 0.0f;
    for (std::int64_t a = 0; a < dk; ++a) {
      const float key = elu_feature(kh[a]);
      const float query = elu_feature(qh[a]);
      z[a] += key;
      den += query * z[a];
      for (std::int64_t c = 0; c < dv; ++c) {
        s[a * dv + c] += key * vh[c];
        o[c] += query * s[a * dv + c];
      }
    }
    const float inverse = inverse_normaliser(den, shape.eps);
    for (std::int64_t c = 0; c < dv; ++c) {
      o[c] *= inverse;
    }
  }
}

}  // namespace longseq::cpu
