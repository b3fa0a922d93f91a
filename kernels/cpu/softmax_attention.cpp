// Materialised softmax attention on the CPU: the memory baseline that flash attention removes.
// The forward pass keeps all (B, H, Nq, Nk) probabilities; the backward pass recomputes them one
// head at a time into an (Nq, Nk) matrix next to the (Nq, Nk) score gradients. The products are
// OpenBLAS sgemm calls, made from one thread (Debian's OpenBLAS is threaded itself and must not be
// called inside OpenMP regions); the row-wise softmax work runs on context.cpu_threads() threads.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <new>

#include "kernels/backends.h"
#include "kernels/common/softmax_math.h"
#include "kernels/cpu/attention_mask.h"

namespace longseq::cpu {

namespace {

// A float buffer of `count` elements (counted by the memory accounting), with a clear error when
// the materialised matrices do not fit.
Tensor allocate_scores(const char* op, std::int64_t count) {
  try {
    return Tensor::empty({count}, DType::f32);
  } catch (const Error&) {
    throw UserError(fmt::format(
        "[{}] the materialised score matrices need {:.1f} GiB, more than this machine has; "
        "use flash attention for this length",
        op, static_cast<double>(count) * sizeof(float) / (1024.0 * 1024.0 * 1024.0)));
  }
}

// scores (Nq, Nk) = scale * Q K^T of one head; Q (Nq, D), K (Nk, D).
void head_scores(const AttentionShape& shape, const float* q, const float* k, float* scores) {
  const auto nq = static_cast<int>(shape.query_length);
  const auto nk = static_cast<int>(shape.key_length);
  const auto d = static_cast<int>(shape.head_dim);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, d, shape.scale, q, d, k, d, 0.0f,
              scores, nk);
}

// Sets the hidden entries of one row of scores to -inf.
void mask_row(const ScoreMask& mask, std::int64_t query, std::int64_t keys, float* row) {
  switch (mask.classify(query, query + 1, 0, keys)) {
    case TileVisibility::visible:
      return;
    case TileVisibility::hidden:
      std::fill(row, row + keys, negative_infinity());
      return;
    case TileVisibility::partial:
      for (std::int64_t j = 0; j < keys; ++j) {
        if (!mask.visible(query, j)) {
          row[j] = negative_infinity();
        }
      }
      return;
  }
}

// Turns scores (Nq, Nk) into probabilities in place and writes each row's log-sum-exp (Nq).
void softmax_rows(int threads, const ScoreMask& mask, std::int64_t queries, std::int64_t keys,
                  float* scores, float* lse) {
#pragma omp parallel for schedule(static) num_threads(threads)
  for (std::int64_t i = 0; i < queries; ++i) {
    float* row = scores + i * keys;
    mask_row(mask, i, keys, row);
    float row_max = negative_infinity();
    for (std::int64_t j = 0; j < keys; ++j) {
      row_max = std::max(row_max, row[j]);
    }
    float sum = 0.0f;
    for (std::int64_t j = 0; j < keys; ++j) {
      row[j] = exp_shifted(row[j], row_max);
      sum += row[j];
    }
    const float normaliser = inverse_sum(sum);
    for (std::int64_t j = 0; j < keys; ++j) {
      row[j] *= normaliser;
    }
    lse[i] = finish_lse(row_max, sum);
  }
}

// Recomputes probabilities exp(score - lse) in place from the forward pass's lse (Nq).
void probabilities_from_lse(int threads, const ScoreMask& mask, std::int64_t queries,
                            std::int64_t keys, float* scores, const float* lse) {
#pragma omp parallel for schedule(static) num_threads(threads)
  for (std::int64_t i = 0; i < queries; ++i) {
    float* row = scores + i * keys;
    mask_row(mask, i, keys, row);
    for (std::int64_t j = 0; j < keys; ++j) {
      // A row that saw no key has lse -inf and every entry masked: its probabilities are 0.
      row[j] = row[j] == negative_infinity() ? 0.0f : std::exp(row[j] - lse[i]);
    }
  }
}

// score_grads (Nq, Nk) = scale * P * (dP - rowsum(dO * O)) in place, from dP.
void score_gradients(int threads, const AttentionShape& shape, const float* probabilities,
                     const float* grad_out, const float* out, float* score_grads) {
  const std::int64_t keys = shape.key_length;
  const std::int64_t head_dim = shape.head_dim;
#pragma omp parallel for schedule(static) num_threads(threads)
  for (std::int64_t i = 0; i < shape.query_length; ++i) {
    float output_dot_grad = 0.0f;
    for (std::int64_t d = 0; d < head_dim; ++d) {
      output_dot_grad += grad_out[i * head_dim + d] * out[i * head_dim + d];
    }
    for (std::int64_t j = 0; j < keys; ++j) {
      score_grads[i * keys + j] =
          shape.scale * probabilities[i * keys + j] * (score_grads[i * keys + j] - output_dot_grad);
    }
  }
}

}  // namespace

void softmax_attention_forward(ComputeContext& context, const AttentionShape& shape,
                               const AttentionOptions& options, const Tensor& q, const Tensor& k,
                               const Tensor& v, const Tensor& out, const Tensor& lse) {
  const ScoreMask mask(shape, options);
  const std::int64_t nq = shape.query_length;
  const std::int64_t nk = shape.key_length;
  const std::int64_t d = shape.head_dim;
  if (nq == 0) {
    return;
  }
  if (nk == 0) {
    out.zero();
    std::fill_n(lse.data<float>(), lse.numel(), negative_infinity());
    return;
  }
  // (B, Hq, Nq, Nk): kept whole, as the baseline whose memory flash attention saves.
  const Tensor probabilities =
      allocate_scores("softmax_attention_forward", shape.batch * shape.query_heads * nq * nk);
  const std::int64_t group = shape.query_heads / shape.kv_heads;
  for (std::int64_t b = 0; b < shape.batch; ++b) {
    for (std::int64_t h = 0; h < shape.query_heads; ++h) {
      const std::int64_t query_head = b * shape.query_heads + h;
      const std::int64_t kv_head = b * shape.kv_heads + h / group;
      float* head_probabilities = probabilities.data<float>() + query_head * nq * nk;
      head_scores(shape, q.data<float>() + query_head * nq * d, k.data<float>() + kv_head * nk * d,
                  head_probabilities);
      softmax_rows(context.cpu_threads(), mask, nq, nk, head_probabilities,
                   lse.data<float>() + query_head * nq);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(nq),
                  static_cast<int>(d), static_cast<int>(nk), 1.0f, head_probabilities,
                  static_cast<int>(nk), v.data<float>() + kv_head * nk * d, static_cast<int>(d),
                  0.0f, out.data<float>() + query_head * nq * d, static_cast<int>(d));
    }
  }
}

void softmax_attention_backward(ComputeContext& context, const AttentionShape& shape,
                                const AttentionOptions& options, const Tensor& q, const Tensor& k,
                                const Tensor& v, const Tensor& out, const Tensor& lse,
                                const Tensor& grad_out, const Tensor& grad_q, const Tensor& grad_k,
                                const Tensor& grad_v) {
  const ScoreMask mask(shape, options);
  const auto nq = static_cast<int>(shape.query_length);
  const auto nk = static_cast<int>(shape.key_length);
  const auto d = static_cast<int>(shape.head_dim);
  if (nq == 0 || nk == 0) {
    grad_q.zero();
    grad_k.zero();
    grad_v.zero();
    return;
  }
  // One head at a time: P and dP/dS, each (Nq, Nk).
  const Tensor probabilities = allocate_scores("softmax_attention_backward", 2LL * nq * nk);
  float* score_grads = probabilities.data<float>() + static_cast<std::int64_t>(nq) * nk;
  const std::int64_t group = shape.query_heads / shape.kv_heads;
  for (std::int64_t b = 0; b < shape.batch; ++b) {
    for (std::int64_t h = 0; h < shape.query_heads; ++h) {
      const std::int64_t query_rows = (b * shape.query_heads + h) * nq * d;
      const std::int64_t kv_rows = (b * shape.kv_heads + h / group) * nk * d;
      const float* q_head = q.data<float>() + query_rows;
      const float* k_head = k.data<float>() + kv_rows;
      const float* v_head = v.data<float>() + kv_rows;
      const float* grad_out_head = grad_out.data<float>() + query_rows;
      // The heads of a group add into the same dK and dV; the first one overwrites.
      const float kv_beta = h % group == 0 ? 0.0f : 1.0f;

      head_scores(shape, q_head, k_head, probabilities.data<float>());
      probabilities_from_lse(context.cpu_threads(), mask, nq, nk, probabilities.data<float>(),
                             lse.data<float>() + (b * shape.query_heads + h) * nq);
      // dV (Nk, D) += P^T dO.
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, d, nq, 1.0f,
                  probabilities.data<float>(), nk, grad_out_head, d, kv_beta,
                  grad_v.data<float>() + kv_rows, d);
      // dP (Nq, Nk) = dO V^T, then dS.
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, d, 1.0f, grad_out_head, d,
                  v_head, d, 0.0f, score_grads, nk);
      score_gradients(context.cpu_threads(), shape, probabilities.data<float>(), grad_out_head,
                      out.data<float>() + query_rows, score_grads);
      // dQ (Nq, D) = dS K;  dK (Nk, D) += dS^T Q.
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, d, nk, 1.0f, score_grads, nk,
                  k_head, d, 0.0f, grad_q.data<float>() + query_rows, d);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, d, nq, 1.0f, score_grads, nk, q_head,
                  d, kv_beta, grad_k.data<float>() + kv_rows, d);
    }
  }
}

}  // namespace longseq::cpu
