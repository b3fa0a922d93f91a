// Linear attention on the CPU, chunked (kernels/linear_attention.h, MECHANISMS.md section 3).
//
// Each (batch, head) is one task; its sequence is cut into chunks of C = kLinearAttentionChunk
// positions. Values are augmented with a column of ones, V' = [V | 1] (C x Dv'), and the state
// with its normaliser, S' = [S | z] (Dk x Dv'), so that numerator and denominator come out of the
// same products (Dv' = Dv + 1 padded to the tile width; when Dv is already a multiple of it, the
// forward products stop at Dv and vector code keeps the normaliser column). Per chunk, with
// F = phi(Q), G = phi(K):
//   causal forward    A = F G^T masked to j <= i;  NUM' = F S' + A V';  S' += G^T V'
//   non-causal        S' = initial + sum over all chunks of G^T V' first; then NUM' = F S'
// The backward never stores a per-position state. With W' = [dL/d num | dL/d den] per position
// (kernels/common/linear_attention_math.h):
//   forward scan      rebuilds NUM' and W'; dF = W' S'^T + B G with B = W' V'^T masked; S' += G^T
//   V' reverse scan      dG = V' R'^T + B^T F;  dV' = G R' + A^T W';  R' += F^T W'
// where R' = [R | r] is the sum of F^T W' over the later positions plus the gradient of the final
// state. Only 1 / den and dL/d den of every position (2 floats) carry from one scan to the other.
// Every product runs on the tile micro-kernel (kernels/cpu/tile_product.h); the masked ones skip
// the tiles the mask zeroes.
//
// Key log scales c_j (kernels/linear_attention.h): S' stands for exp(m) S'. Each chunk has a frame
// M: the running max max(m, c_j of the chunk and every chunk before) when causal, the max over all
// keys otherwise. S' is rescaled to M before the chunk's keys are added, and G holds the weighted
// features exp(c_j - M) phi(k_j), so the products above are unchanged; the chunk's NUM' and W'
// are in that frame too. R' stands for exp(rho) R' and is moved to the frame -M of each chunk
// before that chunk's queries add to it (R'_true sums exp(-M) F^T W'); the reverse scans visit
// chunks from the last, whose frames are the largest, so every rescaling factor is <= 1 for states
// that come from the same sequence. dk_j = exp(c_j - M) (dL/dG)_j.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
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

// The masked products of a chunk skip what the causal mask zeroes: per block of kTileRows rows
// [r, r + h), a lower-triangular A (m x m) contributes only through p < r + h, an upper-triangular
// one only through p >= r, and a lower triangle of C needs only the column panels up to r + h.
// With m = C = 64 and AVX2's 6-row tiles that is about 55 % of the full product for A and 65 %
// for C.

// C (m x n) (+)= A B for A (m x m) lower triangular (A(i, p) = 0 for p > i), B (m x n).
void lower_triangular_product(std::int64_t m, std::int64_t n, StridedMatrix a, const float* b,
                              std::int64_t b_row_stride, RowMatrix c, bool accumulate) {
  for (std::int64_t row = 0; row < m; row += kTileRows) {
    const std::int64_t rows = std::min<std::int64_t>(kTileRows, m - row);
    tile_product(rows, n, row + rows, {a.data + row * a.row_stride, a.row_stride, a.inner_stride},
                 b, b_row_stride, {c.data + row * c.row_stride, c.row_stride}, accumulate);
  }
}

// C (m x n) (+)= A B for A (m x m) upper triangular (A(i, p) = 0 for p < i), B (m x n).
void upper_triangular_product(std::int64_t m, std::int64_t n, StridedMatrix a, const float* b,
                              std::int64_t b_row_stride, RowMatrix c, bool accumulate) {
  for (std::int64_t row = 0; row < m; row += kTileRows) {
    const std::int64_t rows = std::min<std::int64_t>(kTileRows, m - row);
    const float* a_block = a.data + row * a.row_stride + row * a.inner_stride;
    tile_product(rows, n, m - row, {a_block, a.row_stride, a.inner_stride}, b + row * b_row_stride,
                 b_row_stride, {c.data + row * c.row_stride, c.row_stride}, accumulate);
  }
}

// The lower triangle (j <= i) of C (m x m) = A B, A (m x k), B (k x m), in whole column panels:
// entries above the diagonal are left unspecified (callers mask them).
void lower_triangle_of_product(std::int64_t m, std::int64_t k, StridedMatrix a, const float* b,
                               std::int64_t b_row_stride, RowMatrix c) {
  for (std::int64_t row = 0; row < m; row += kTileRows) {
    const std::int64_t rows = std::min<std::int64_t>(kTileRows, m - row);
    tile_product(rows, std::min(m, padded(row + rows)), k,
                 {a.data + row * a.row_stride, a.row_stride, a.inner_stride}, b, b_row_stride,
                 {c.data + row * c.row_stride, c.row_stride}, false);
  }
}

// phi(x) = elu(x) + 1 per lane: exp(x) = 2^(x log2 e) for x <= 0 (exp2_vector, relative error
// about 2e-7; below about -87 it is 0 where expf gives a denormal).
FloatVector elu_feature_vector(FloatVector x) {
  constexpr float kLog2E = 1.4426950408889634f;
  const FloatVector negative = x > 0.0f ? FloatVector{} : x;
  return x > 0.0f ? x + 1.0f : exp2_vector(negative * kLog2E);
}

// phi of one row of `length` features.
void feature_row(LinearAttentionFeatureMap map, const float* x, std::int64_t length, float* out) {
  std::int64_t a = 0;
  if (map == LinearAttentionFeatureMap::elu_plus_one) {
    for (; a + kVectorWidth <= length; a += kVectorWidth) {
      store_vector(out + a, elu_feature_vector(load_vector(x + a)));
    }
  }
  for (; a < length; ++a) {
    out[a] = key_feature(map, x[a]);
  }
}

// grad_x = weight * grad_features * phi'(x) for one row of `length` features; phi'(x) = phi(x)
// for x <= 0 with elu + 1.
void feature_gradient_row(LinearAttentionFeatureMap map, const float* x, const float* grad_features,
                          float weight, std::int64_t length, float* grad_x) {
  std::int64_t a = 0;
  const bool elu = map == LinearAttentionFeatureMap::elu_plus_one;
  for (; a + kVectorWidth <= length; a += kVectorWidth) {
    const FloatVector value = load_vector(x + a);
    const FloatVector derivative =
        elu ? (value > 0.0f ? broadcast(1.0f) : elu_feature_vector(value)) : broadcast(1.0f);
    store_vector(grad_x + a, load_vector(grad_features + a) * weight * derivative);
  }
  for (; a < length; ++a) {
    grad_x[a] = grad_features[a] * weight * key_feature_derivative(map, x[a]);
  }
}

// sum_a x[a] y[a] + sum_b w[b] over `x_length` and `w_length` floats.
float dot_plus_sum(const float* x, const float* y, std::int64_t x_length, const float* w,
                   std::int64_t w_length) {
  FloatVector sums{};
  std::int64_t a = 0;
  for (; a + kVectorWidth <= x_length; a += kVectorWidth) {
    sums += load_vector(x + a) * load_vector(y + a);
  }
  std::int64_t b = 0;
  for (; b + kVectorWidth <= w_length; b += kVectorWidth) {
    sums += load_vector(w + b);
  }
  float sum = horizontal_sum(sums);
  for (; a < x_length; ++a) {
    sum += x[a] * y[a];
  }
  for (; b < w_length; ++b) {
    sum += w[b];
  }
  return sum;
}

// The per-thread buffers of one (batch, head) task and the steps of the chunked algorithm.
class ChunkWorkspace {
 public:
  explicit ChunkWorkspace(const LinearAttentionShape& shape)
      : dk_(shape.key_dim),
        dv_(shape.value_dim),
        dkp_(padded(shape.key_dim)),
        dvp_(padded(shape.value_dim + 1)),
        dvn_(padded(shape.value_dim)),
        eps_(shape.eps),
        causal_(shape.causal),
        scaled_(shape.key_log_scale),
        feature_map_(shape.feature_map),
        key_weights_(kChunk),
        normaliser_(dkp_),
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

  // S' = the given state, or 0; returns its log scale (-inf for the zero state, 0 unscaled).
  float load_state(const LinearAttentionState& state, std::int64_t bh, std::vector<float>& into) {
    std::fill(into.begin(), into.end(), 0.0f);
    if (!state.defined()) {
      return scaled_ ? -std::numeric_limits<float>::infinity() : 0.0f;
    }
    const float* s = state.s.data<float>() + bh * dk_ * dv_;
    const float* z = state.z.data<float>() + bh * dk_;
    for (std::int64_t a = 0; a < dk_; ++a) {
      std::copy(s + a * dv_, s + (a + 1) * dv_, into.data() + a * dvp_);
      into[a * dvp_ + dv_] = z[a];
    }
    return scaled_ ? state.log_scale.data<float>()[bh] : 0.0f;
  }

  void store_state(const std::vector<float>& from, float log_scale, std::int64_t bh,
                   const LinearAttentionState& state) const {
    if (!state.defined()) {
      return;
    }
    if (scaled_) {
      state.log_scale.data<float>()[bh] = log_scale;
    }
    float* s = state.s.data<float>() + bh * dk_ * dv_;
    float* z = state.z.data<float>() + bh * dk_;
    for (std::int64_t a = 0; a < dk_; ++a) {
      std::copy(from.data() + a * dvp_, from.data() + a * dvp_ + dv_, s + a * dv_);
      z[a] = from[a * dvp_ + dv_];
    }
  }

  void load_states(const LinearAttentionState& state, std::int64_t bh) {
    state_log_scale_ = load_state(state, bh, state_);
  }
  void store_states(std::int64_t bh, const LinearAttentionState& state) const {
    store_state(state_, state_log_scale_, bh, state);
  }
  void load_grad_states(const LinearAttentionState& state, std::int64_t bh) {
    grad_log_scale_ = load_state(state, bh, grad_state_);
  }
  void store_grad_states(std::int64_t bh, const LinearAttentionState& state) const {
    store_state(grad_state_, grad_log_scale_, bh, state);
  }
  [[nodiscard]] float state_log_scale() const { return state_log_scale_; }

  // The frame of the next chunk of keys (log scales c, `length` of them): M = max(m, max c); S'
  // is rescaled to it. 0 without log scales.
  float advance_frame(const float* key_log_scale, std::int64_t length) {
    if (!scaled_) {
      return 0.0f;
    }
    float frame = state_log_scale_;
    for (std::int64_t i = 0; i < length; ++i) {
      frame = std::max(frame, key_log_scale[i]);
    }
    scale(state_, log_scale_factor(state_log_scale_, frame));
    state_log_scale_ = frame;
    return frame;
  }

  // Moves R' to the frame of a chunk whose queries have frame M (R' log scale -M).
  void grad_to_frame(float frame) {
    if (!scaled_) {
      return;
    }
    scale(grad_state_, log_scale_factor(grad_log_scale_, -frame));
    grad_log_scale_ = -frame;
  }

  // phi of `length` rows of x (row stride Dk) into kChunk x Dk' rows; the rest 0.
  // The padding columns are never written, so they stay 0 from construction.
  void load_features(const float* x, std::int64_t length, std::vector<float>& features) const {
    std::fill(features.begin() + length * dkp_, features.end(), 0.0f);
    for (std::int64_t i = 0; i < length; ++i) {
      feature_row(feature_map_, x + i * dk_, dk_, features.data() + i * dkp_);
    }
  }

  // F, G and V' of the chunk of `length` positions at q, k, v (key log scales at key_log_scale,
  // null without, weighted into the chunk's `frame`); with `scores`, also G^T and A = F G^T masked.
  void load_chunk(const float* q, const float* k, const float* v, const float* key_log_scale,
                  float frame, std::int64_t length, bool scores) {
    load_features(q, length, features_q_);
    load_features(k, length, features_k_);
    if (scaled_) {
      for (std::int64_t i = 0; i < length; ++i) {
        key_weights_[i] = log_scale_factor(key_log_scale[i], frame);
        for (std::int64_t a = 0; a < dk_; ++a) {
          features_k_[i * dkp_ + a] *= key_weights_[i];
        }
      }
    }
    std::fill(values_.begin() + length * dvp_, values_.end(), 0.0f);
    for (std::int64_t i = 0; i < length; ++i) {
      std::copy(v + i * dv_, v + (i + 1) * dv_, values_.data() + i * dvp_);
      values_[i * dvp_ + dv_] = 1.0f;
    }
    if (scores) {
      transpose(features_k_.data(), kChunk, dkp_, dkp_, features_k_t_.data(), kChunk);
      lower_triangle_of_product(kChunk, dk_, {features_q_.data(), dkp_, 1}, features_k_t_.data(),
                                kChunk, {scores_.data(), kChunk});
      mask_upper(scores_.data());
    }
  }

  // S' += G^T V'.
  void add_keys_to_state() {
    tile_product(dk_, dvn_, kChunk, {features_k_.data(), 1, dkp_}, values_.data(), dvp_,
                 {state_.data(), dvp_}, true);
    if (separate_normaliser()) {
      // z += G^T 1, the column sums of G (its rows past the chunk's length are 0).
      std::fill(normaliser_.begin(), normaliser_.end(), 0.0f);
      for (std::int64_t j = 0; j < kChunk; ++j) {
        for (std::int64_t a = 0; a < dkp_; a += kVectorWidth) {
          store_vector(normaliser_.data() + a, load_vector(normaliser_.data() + a) +
                                                   load_vector(features_k_.data() + j * dkp_ + a));
        }
      }
      for (std::int64_t a = 0; a < dk_; ++a) {
        state_[a * dvp_ + dv_] += normaliser_[a];
      }
    }
  }

  // NUM' = F S' (+ A V' when causal).
  void numerator() {
    tile_product(kChunk, dvn_, dk_, {features_q_.data(), dkp_, 1}, state_.data(), dvp_,
                 {numerator_.data(), dvp_}, false);
    if (causal_) {
      lower_triangular_product(kChunk, dvn_, {scores_.data(), kChunk, 1}, values_.data(), dvp_,
                               {numerator_.data(), dvp_}, true);
    }
    if (separate_normaliser()) {
      // den_i - eps = F_i . z + sum_{j <= i} A_ij (A is masked, so the whole row).
      for (std::int64_t a = 0; a < dk_; ++a) {
        normaliser_[a] = state_[a * dvp_ + dv_];
      }
      for (std::int64_t i = 0; i < kChunk; ++i) {
        numerator_[i * dvp_ + dv_] =
            dot_plus_sum(features_q_.data() + i * dkp_, normaliser_.data(), dk_,
                         scores_.data() + i * kChunk, causal_ ? kChunk : 0);
      }
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
      lower_triangle_of_product(kChunk, dv_ + 1, {readout_grad_.data(), dvp_, 1}, values_t_.data(),
                                kChunk, {weights_.data(), kChunk});
      mask_upper(weights_.data());
    }
  }

  // dq = (W' S'^T + B G) * phi'(q) for `length` rows.
  void write_grad_q(const float* q, std::int64_t length, float* grad_q) {
    transpose(state_.data(), dkp_, dvp_, dvp_, state_t_.data(), dkp_);
    tile_product(kChunk, dkp_, dv_ + 1, {readout_grad_.data(), dvp_, 1}, state_t_.data(), dkp_,
                 {grad_features_.data(), dkp_}, false);
    if (causal_) {
      lower_triangular_product(kChunk, dkp_, {weights_.data(), kChunk, 1}, features_k_.data(), dkp_,
                               {grad_features_.data(), dkp_}, true);
    }
    write_feature_gradient(q, length, nullptr, grad_q);
  }

  // dk = (V' R'^T + B^T F) * phi'(k) and dv = (G R' + A^T W')[:, :Dv] for `length` rows.
  void write_grad_kv(const float* k, std::int64_t length, float* grad_k, float* grad_v) {
    transpose(grad_state_.data(), dkp_, dvp_, dvp_, state_t_.data(), dkp_);
    tile_product(kChunk, dkp_, dv_ + 1, {values_.data(), dvp_, 1}, state_t_.data(), dkp_,
                 {grad_features_.data(), dkp_}, false);
    tile_product(kChunk, dvp_, dk_, {features_k_.data(), dkp_, 1}, grad_state_.data(), dvp_,
                 {grad_values_.data(), dvp_}, false);
    if (causal_) {
      upper_triangular_product(kChunk, dkp_, {weights_.data(), 1, kChunk}, features_q_.data(), dkp_,
                               {grad_features_.data(), dkp_}, true);
      upper_triangular_product(kChunk, dvp_, {scores_.data(), 1, kChunk}, readout_grad_.data(),
                               dvp_, {grad_values_.data(), dvp_}, true);
    }
    write_feature_gradient(k, length, scaled_ ? key_weights_.data() : nullptr, grad_k);
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
  // grad_x = dL/d phi(x) (in grad_features_, times the row weights if given) * phi'(x).
  void write_feature_gradient(const float* x, std::int64_t length, const float* weights,
                              float* grad_x) const {
    for (std::int64_t i = 0; i < length; ++i) {
      feature_gradient_row(feature_map_, x + i * dk_, grad_features_.data() + i * dkp_,
                           weights == nullptr ? 1.0f : weights[i], dk_, grad_x + i * dk_);
    }
  }

  // With Dv a multiple of the tile width, the products run over the Dv value columns only and the
  // normaliser column (z of S', den - eps of NUM') is kept by vector code: padding Dv + 1 = 65
  // columns to 80 would cost 25 % more product work.
  [[nodiscard]] bool separate_normaliser() const { return dvn_ == dv_; }

  static void scale(std::vector<float>& values, float factor) {
    if (factor != 1.0f) {
      for (float& value : values) {
        value *= factor;
      }
    }
  }

  std::int64_t dk_, dv_, dkp_, dvp_;
  std::int64_t dvn_;  // value columns of the forward products: Dv padded (Dv' but for
                      // separate_normaliser())
  float eps_;
  bool causal_;
  bool scaled_;
  LinearAttentionFeatureMap feature_map_;
  float state_log_scale_ = 0.0f;                               // m of S'
  float grad_log_scale_ = 0.0f;                                // rho of R'
  std::vector<float> key_weights_;                             // exp(c_j - M) of the chunk's keys
  std::vector<float> normaliser_;                              // z, or the column sums of G (Dk')
  std::vector<float> features_q_, features_k_, features_k_t_;  // F, G (C x Dk'), G^T
  std::vector<float> values_, values_t_;                       // V' (C x Dv'), V'^T
  std::vector<float> scores_, weights_;                        // A, B (C x C)
  std::vector<float> numerator_, readout_grad_;                // NUM', W' (C x Dv')
  std::vector<float> grad_features_, grad_values_;             // (C x Dk'), (C x Dv')
  std::vector<float> state_, grad_state_;                      // S', R' (Dk' x Dv')
  std::vector<float> state_t_;                                 // S'^T or R'^T
};

// Pointers of one (batch, head) task into (B, H, N, D) tensors and its (B, H, N) key log scales.
struct HeadRows {
  std::int64_t length;
  std::int64_t dk;
  std::int64_t dv;
  std::int64_t bh;
  const float* key_log_scale;  // of this head, or null

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
  [[nodiscard]] const float* log_scales(std::int64_t p) const {
    return key_log_scale == nullptr ? nullptr : key_log_scale + p;
  }
  [[nodiscard]] std::int64_t chunk_length(std::int64_t p) const {
    return std::min(kChunk, length - p);
  }
};

HeadRows head_rows(const LinearAttentionShape& shape, const Tensor& key_log_scale,
                   std::int64_t bh) {
  return {shape.length, shape.key_dim, shape.value_dim, bh,
          key_log_scale.defined() ? key_log_scale.data<float>() + bh * shape.length : nullptr};
}

// S' += G^T V' over every chunk, each in its running frame.
void add_all_keys(ChunkWorkspace& work, const HeadRows& rows, const Tensor& q, const Tensor& k,
                  const Tensor& v) {
  for (std::int64_t p = 0; p < rows.length; p += kChunk) {
    const std::int64_t length = rows.chunk_length(p);
    const float frame = work.advance_frame(rows.log_scales(p), length);
    work.load_chunk(rows.keys(q, p), rows.keys(k, p), rows.values(v, p), rows.log_scales(p), frame,
                    length, false);
    work.add_keys_to_state();
  }
}

}  // namespace

void linear_attention_forward(ComputeContext& context, const LinearAttentionShape& shape,
                              const Tensor& q, const Tensor& k, const Tensor& v,
                              const Tensor& key_log_scale, const LinearAttentionState& initial,
                              const Tensor& out, const LinearAttentionState& final) {
  const std::int64_t tasks = shape.batch * shape.heads;
  const bool with_output = out.defined();
#pragma omp parallel num_threads(context.cpu_threads())
  {
    ChunkWorkspace work(shape);
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t bh = 0; bh < tasks; ++bh) {
      const HeadRows rows = head_rows(shape, key_log_scale, bh);
      work.load_states(initial, bh);
      if (!shape.causal || !with_output) {
        add_all_keys(work, rows, q, k, v);
      }
      if (with_output) {
        for (std::int64_t p = 0; p < shape.length; p += kChunk) {
          const std::int64_t length = rows.chunk_length(p);
          const float frame = shape.causal ? work.advance_frame(rows.log_scales(p), length)
                                           : work.state_log_scale();
          work.load_chunk(rows.keys(q, p), rows.keys(k, p), rows.values(v, p), rows.log_scales(p),
                          frame, length, shape.causal);
          work.numerator();
          work.write_output(length, rows.values_out(out, p));
          if (shape.causal) {
            work.add_keys_to_state();
          }
        }
      }
      work.store_states(bh, final);
    }
  }
}

void linear_attention_backward(ComputeContext& context, const LinearAttentionShape& shape,
                               const Tensor& q, const Tensor& k, const Tensor& v,
                               const Tensor& key_log_scale, const Tensor& grad_out,
                               const LinearAttentionState& initial,
                               const LinearAttentionState& grad_final, const Tensor& grad_q,
                               const Tensor& grad_k, const Tensor& grad_v,
                               const LinearAttentionState& grad_initial) {
  const std::int64_t tasks = shape.batch * shape.heads;
  const bool want_q = grad_q.defined();
  const bool want_kv = grad_k.defined();
  const bool want_initial = grad_initial.defined();
  const bool causal = shape.causal;
  const std::int64_t chunks = (shape.length + kChunk - 1) / kChunk;
#pragma omp parallel num_threads(context.cpu_threads())
  {
    ChunkWorkspace work(shape);
    std::vector<float> inverse_den(static_cast<std::size_t>(shape.length));
    std::vector<float> grad_den(static_cast<std::size_t>(shape.length));
    std::vector<float> frames(static_cast<std::size_t>(chunks));  // M of each chunk
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t bh = 0; bh < tasks; ++bh) {
      const HeadRows rows = head_rows(shape, key_log_scale, bh);
      // Forward scan: S' before each chunk, W', dq.
      work.load_states(initial, bh);
      if (!causal) {
        add_all_keys(work, rows, q, k, v);
      }
      for (std::int64_t p = 0; p < shape.length; p += kChunk) {
        const std::int64_t length = rows.chunk_length(p);
        const float frame =
            causal ? work.advance_frame(rows.log_scales(p), length) : work.state_log_scale();
        frames[p / kChunk] = frame;
        work.load_chunk(rows.keys(q, p), rows.keys(k, p), rows.values(v, p), rows.log_scales(p),
                        frame, length, causal);
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
      // Reverse scans: R' after each chunk, dk, dv; finally R' is the gradient of the initial
      // state.
      work.load_grad_states(grad_final, bh);
      const std::int64_t last = (chunks - 1) * kChunk;
      const bool sum_first = !causal || !want_kv;
      if (sum_first && (want_kv || want_initial)) {
        for (std::int64_t p = last; p >= 0; p -= kChunk) {
          const std::int64_t length = rows.chunk_length(p);
          const float frame = frames[p / kChunk];
          work.grad_to_frame(frame);
          work.load_chunk(rows.keys(q, p), rows.keys(k, p), rows.values(v, p), rows.log_scales(p),
                          frame, length, false);
          work.rebuild_readout_gradient(rows.values(grad_out, p), length, inverse_den.data() + p,
                                        grad_den.data() + p);
          work.add_queries_to_grad_state();
        }
      }
      if (want_kv) {
        for (std::int64_t p = last; p >= 0; p -= kChunk) {
          const std::int64_t length = rows.chunk_length(p);
          const float frame = frames[p / kChunk];
          work.grad_to_frame(frame);
          work.load_chunk(rows.keys(q, p), rows.keys(k, p), rows.values(v, p), rows.log_scales(p),
                          frame, length, causal);
          work.rebuild_readout_gradient(rows.values(grad_out, p), length, inverse_den.data() + p,
                                        grad_den.data() + p);
          work.write_grad_kv(rows.keys(k, p), length, rows.keys_out(grad_k, p),
                             rows.values_out(grad_v, p));
          if (causal) {
            work.add_queries_to_grad_state();
          }
        }
      }
      work.store_grad_states(bh, grad_initial);
    }
  }
}

void linear_attention_step(ComputeContext& context, const LinearAttentionShape& shape,
                           const Tensor& q, const Tensor& k, const Tensor& v,
                           const Tensor& key_log_scale, const LinearAttentionState& state,
                           const Tensor& out) {
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
    // With a log scale: the state moves to m' = max(m, c) and the key is weighted exp(c - m').
    float state_factor = 1.0f;
    float key_weight = 1.0f;
    if (key_log_scale.defined()) {
      float& m = state.log_scale.data<float>()[bh];
      const float c = key_log_scale.data<float>()[bh];
      const float frame = std::max(m, c);
      state_factor = log_scale_factor(m, frame);
      key_weight = log_scale_factor(c, frame);
      m = frame;
    }
    std::fill(o, o + dv, 0.0f);
    float den = 0.0f;
    for (std::int64_t a = 0; a < dk; ++a) {
      const float key = key_weight * key_feature(shape.feature_map, kh[a]);
      const float query = key_feature(shape.feature_map, qh[a]);
      z[a] = z[a] * state_factor + key;
      den += query * z[a];
      for (std::int64_t c = 0; c < dv; ++c) {
        s[a * dv + c] = s[a * dv + c] * state_factor + key * vh[c];
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
