// Flash attention on the CPU: tiled, online softmax, nothing of size Nq x Nk in memory.
//
// Every tile is computed transposed, keys x queries, so that the softmax statistics of a query
// are one lane of a vector and every product has the form tile_product wants, C += A B with B
// row-major and n a multiple of 16:
//   scores^T (keys x queries)  = K (keys x D, rows of the tensor) * Qt (D x queries, packed)
//   out      (queries x D)    += P (as the transpose of P^T, read through strides) * V
// The query side is packed once per query tile and scaled by scale * log2(e), so the scores come
// out in the log2 domain and the softmax needs one exp2 per score.
//
// Threads: the forward pass splits (batch, head, query tile) tasks; the backward pass splits
// (batch, key/value head, key split) items, each owning its rows of dK and dV and its own copy of
// dQ, so no two threads ever add into the same memory and the result does not depend on the
// schedule.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/backends.h"
#include "kernels/common/softmax_math.h"
#include "kernels/cpu/attention_mask.h"
#include "kernels/cpu/tile_product.h"
#include "kernels/cpu/vector_math.h"

namespace longseq::cpu {

namespace {

constexpr float kLog2E = 1.44269504088896340736f;
constexpr float kLn2 = 0.69314718055994530942f;

// Queries per tile: the n of the score products, a multiple of kTileColumnMultiple.
constexpr std::int64_t kQueryTile = 64;
// Keys per tile: the m of the score products, a multiple of kTileRows for AVX2 and AVX-512.
constexpr std::int64_t kKeyTile = 96;
static_assert(kQueryTile % kTileColumnMultiple == 0);
constexpr int kQueryVectors = static_cast<int>(kQueryTile / kVectorWidth);

std::int64_t ceil_div(std::int64_t value, std::int64_t divisor) {
  return (value + divisor - 1) / divisor;
}

// Head dims padded so that products with D columns satisfy tile_product.
std::int64_t padded_head_dim(std::int64_t head_dim) {
  return ceil_div(head_dim, kTileColumnMultiple) * kTileColumnMultiple;
}

// transposed (D x kQueryTile) = scale * rows^T for rows (count x D); columns past count are 0.
void pack_transposed(const float* rows, std::int64_t count, std::int64_t head_dim, float scale,
                     float* transposed) {
  for (std::int64_t d = 0; d < head_dim; ++d) {
    float* column = transposed + d * kQueryTile;
    for (std::int64_t i = 0; i < count; ++i) {
      column[i] = scale * rows[i * head_dim + d];
    }
    std::fill(column + count, column + kQueryTile, 0.0f);
  }
}

// Rows (count x D) as a matrix with padded_dim >= D columns, the extra ones 0: the rows themselves
// when no padding is needed, else a copy in `buffer` (count x padded_dim).
const float* padded_rows(const float* rows, std::int64_t count, std::int64_t head_dim,
                         std::int64_t padded_dim, float* buffer) {
  if (padded_dim == head_dim) {
    return rows;
  }
  for (std::int64_t i = 0; i < count; ++i) {
    std::copy(rows + i * head_dim, rows + (i + 1) * head_dim, buffer + i * padded_dim);
    std::fill(buffer + i * padded_dim + head_dim, buffer + (i + 1) * padded_dim, 0.0f);
  }
  return buffer;
}

// Sets the hidden scores of a partial tile to -inf; scores (keys x kQueryTile).
void mask_tile(const ScoreMask& mask, std::int64_t query_begin, std::int64_t queries,
               std::int64_t key_begin, std::int64_t keys, float* scores) {
  for (std::int64_t r = 0; r < keys; ++r) {
    for (std::int64_t i = 0; i < queries; ++i) {
      if (!mask.visible(query_begin + i, key_begin + r)) {
        scores[r * kQueryTile + i] = negative_infinity();
      }
    }
  }
}

// One online-softmax step over a tile of log2-domain scores (keys x kQueryTile): replaces the
// scores by exp2(score - new running max), updates the running max and sum of every query, and
// writes the factor by which the query's earlier output must be rescaled.
void online_softmax_step(float* scores, std::int64_t keys, float* running_max, float* running_sum,
                         float* rescale) {
  const FloatVector minus_infinity = broadcast(negative_infinity());
  FloatVector shift[kQueryVectors];
  for (int v = 0; v < kQueryVectors; ++v) {
    shift[v] = minus_infinity;
  }
  for (std::int64_t r = 0; r < keys; ++r) {
    for (int v = 0; v < kQueryVectors; ++v) {
      shift[v] = max_vector(shift[v], load_vector(scores + r * kQueryTile + v * kVectorWidth));
    }
  }
  FloatVector sums[kQueryVectors];
  for (int v = 0; v < kQueryVectors; ++v) {
    const FloatVector old_max = load_vector(running_max + v * kVectorWidth);
    const FloatVector new_max = max_vector(old_max, shift[v]);
    store_vector(running_max + v * kVectorWidth, new_max);
    // A query that has seen nothing yet keeps max -inf; shifting by 0 keeps its terms at 0.
    shift[v] = new_max == minus_infinity ? FloatVector{} : new_max;
    store_vector(rescale + v * kVectorWidth, exp2_vector(old_max - shift[v]));
    sums[v] = FloatVector{};
  }
  for (std::int64_t r = 0; r < keys; ++r) {
    for (int v = 0; v < kQueryVectors; ++v) {
      float* score = scores + r * kQueryTile + v * kVectorWidth;
      const FloatVector probability = exp2_vector(load_vector(score) - shift[v]);
      store_vector(score, probability);
      sums[v] += probability;
    }
  }
  for (int v = 0; v < kQueryVectors; ++v) {
    const FloatVector sum = load_vector(running_sum + v * kVectorWidth);
    store_vector(running_sum + v * kVectorWidth,
                 sum * load_vector(rescale + v * kVectorWidth) + sums[v]);
  }
}

// Pointers to the (batch, head) slices of the contiguous attention tensors.
struct HeadSlices {
  const AttentionShape& shape;

  [[nodiscard]] std::int64_t query_head_offset(std::int64_t batch, std::int64_t head) const {
    return (batch * shape.query_heads + head) * shape.query_length * shape.head_dim;
  }
  [[nodiscard]] std::int64_t key_head_offset(std::int64_t batch, std::int64_t kv_head) const {
    return (batch * shape.kv_heads + kv_head) * shape.key_length * shape.head_dim;
  }
  [[nodiscard]] std::int64_t lse_offset(std::int64_t batch, std::int64_t head) const {
    return (batch * shape.query_heads + head) * shape.query_length;
  }
  [[nodiscard]] std::int64_t group_size() const { return shape.query_heads / shape.kv_heads; }
};

}  // namespace

void flash_attention_forward(ComputeContext& context, const AttentionShape& shape,
                             const AttentionOptions& options, const Tensor& q, const Tensor& k,
                             const Tensor& v, const Tensor& out, const Tensor& lse) {
  const HeadSlices slices{shape};
  const ScoreMask mask(shape, options);
  const std::int64_t head_dim = shape.head_dim;
  const std::int64_t padded_dim = padded_head_dim(head_dim);
  const std::int64_t query_tiles = ceil_div(shape.query_length, kQueryTile);
  const std::int64_t key_tiles = ceil_div(shape.key_length, kKeyTile);
  const std::int64_t tasks = shape.batch * shape.query_heads * query_tiles;
  const float* q_data = q.data<float>();
  const float* k_data = k.data<float>();
  const float* v_data = v.data<float>();
  float* out_data = out.data<float>();
  float* lse_data = lse.data<float>();
  const float score_scale = shape.scale * kLog2E;
  const int threads = static_cast<int>(std::min<std::int64_t>(context.cpu_threads(), tasks));

#pragma omp parallel num_threads(std::max(threads, 1))
  {
    std::vector<float> query_transposed(head_dim * kQueryTile);  // (D, kQueryTile)
    std::vector<float> scores(kKeyTile * kQueryTile);            // (keys, queries)
    std::vector<float> output(kQueryTile * padded_dim);          // (queries, padded D)
    std::vector<float> values_padded(kKeyTile * padded_dim);     // (keys, padded D)
    std::vector<float> running_max(kQueryTile);
    std::vector<float> running_sum(kQueryTile);
    std::vector<float> rescale(kQueryTile);

    // Tasks differ in cost under masks; dynamic scheduling only changes who computes a tile.
#pragma omp for schedule(dynamic)
    for (std::int64_t task = 0; task < tasks; ++task) {
      const std::int64_t query_tile = task % query_tiles;
      const std::int64_t head = (task / query_tiles) % shape.query_heads;
      const std::int64_t batch = task / (query_tiles * shape.query_heads);
      const std::int64_t kv_head = head / slices.group_size();
      const std::int64_t query_begin = query_tile * kQueryTile;
      const std::int64_t queries = std::min(kQueryTile, shape.query_length - query_begin);
      const float* q_rows = q_data + slices.query_head_offset(batch, head) + query_begin * head_dim;
      const float* k_head = k_data + slices.key_head_offset(batch, kv_head);
      const float* v_head = v_data + slices.key_head_offset(batch, kv_head);

      pack_transposed(q_rows, queries, head_dim, score_scale, query_transposed.data());
      std::fill(output.begin(), output.end(), 0.0f);
      std::fill(running_max.begin(), running_max.end(), negative_infinity());
      std::fill(running_sum.begin(), running_sum.end(), 0.0f);

      for (std::int64_t key_tile = 0; key_tile < key_tiles; ++key_tile) {
        const std::int64_t key_begin = key_tile * kKeyTile;
        const std::int64_t keys = std::min(kKeyTile, shape.key_length - key_begin);
        const TileVisibility visibility =
            mask.classify(query_begin, query_begin + queries, key_begin, key_begin + keys);
        if (visibility == TileVisibility::hidden) {
          continue;
        }
        tile_product(keys, kQueryTile, head_dim, {k_head + key_begin * head_dim, head_dim, 1},
                     query_transposed.data(), kQueryTile, {scores.data(), kQueryTile}, false);
        if (visibility == TileVisibility::partial) {
          mask_tile(mask, query_begin, queries, key_begin, keys, scores.data());
        }
        online_softmax_step(scores.data(), keys, running_max.data(), running_sum.data(),
                            rescale.data());
        for (std::int64_t i = 0; i < queries; ++i) {
          const FloatVector factor = broadcast(rescale[i]);
          for (std::int64_t d = 0; d < padded_dim; d += kVectorWidth) {
            float* row = output.data() + i * padded_dim + d;
            store_vector(row, load_vector(row) * factor);
          }
        }
        const float* values = padded_rows(v_head + key_begin * head_dim, keys, head_dim, padded_dim,
                                          values_padded.data());
        // output (queries x padded D) += P (queries x keys, the transpose of scores) * values.
        tile_product(queries, padded_dim, keys, {scores.data(), 1, kQueryTile}, values, padded_dim,
                     {output.data(), padded_dim}, true);
      }

      float* out_rows = out_data + slices.query_head_offset(batch, head) + query_begin * head_dim;
      float* lse_row = lse_data + slices.lse_offset(batch, head) + query_begin;
      for (std::int64_t i = 0; i < queries; ++i) {
        const float normaliser = inverse_sum(running_sum[i]);
        for (std::int64_t d = 0; d < head_dim; ++d) {
          out_rows[i * head_dim + d] = output[i * padded_dim + d] * normaliser;
        }
        lse_row[i] = finish_lse(running_max[i] * kLn2, running_sum[i]);
      }
    }
  }
}

namespace {

// How many parts the keys of one (batch, kv head) are split into for the backward pass, so that
// every thread gets work: 1 when there are enough heads, else the fewest parts that divide the
// items evenly among the threads (or give each thread at least four), at most one per key tile.
std::int64_t backward_key_splits(const AttentionShape& shape, std::int64_t threads,
                                 std::int64_t key_tiles) {
  const std::int64_t heads = shape.batch * shape.kv_heads;
  std::int64_t splits = 1;
  while (splits < key_tiles && (heads * splits) % threads != 0 && heads * splits < 4 * threads) {
    ++splits;
  }
  return splits;
}

}  // namespace

void flash_attention_backward(ComputeContext& context, const AttentionShape& shape,
                              const AttentionOptions& options, const Tensor& q, const Tensor& k,
                              const Tensor& v, const Tensor& out, const Tensor& lse,
                              const Tensor& grad_out, const Tensor& grad_q, const Tensor& grad_k,
                              const Tensor& grad_v) {
  const HeadSlices slices{shape};
  const ScoreMask mask(shape, options);
  const std::int64_t head_dim = shape.head_dim;
  const std::int64_t padded_dim = padded_head_dim(head_dim);
  const std::int64_t query_tiles = ceil_div(shape.query_length, kQueryTile);
  const std::int64_t key_tiles = ceil_div(shape.key_length, kKeyTile);
  const std::int64_t threads = std::max(context.cpu_threads(), 1);
  const std::int64_t splits = backward_key_splits(shape, threads, key_tiles);
  const std::int64_t items = shape.batch * shape.kv_heads * splits;
  const float* q_data = q.data<float>();
  const float* k_data = k.data<float>();
  const float* v_data = v.data<float>();
  const float* out_data = out.data<float>();
  const float* lse_data = lse.data<float>();
  const float* grad_out_data = grad_out.data<float>();
  float* grad_k_data = grad_k.data<float>();
  float* grad_v_data = grad_v.data<float>();
  // With one split each item writes its dQ rows directly; with more, split s writes partial sums
  // to slot s (splits, B, Hq, Nq, D) and they are added in slot order afterwards.
  const Tensor grad_q_partials = Tensor::empty({splits > 1 ? splits * q.numel() : 0}, DType::f32);
  float* grad_q_data = grad_q.data<float>();
  float* grad_q_target = splits > 1 ? grad_q_partials.data<float>() : grad_q_data;
  const float score_scale = shape.scale * kLog2E;
  const int team_size = static_cast<int>(std::clamp<std::int64_t>(items, 1, threads));

#pragma omp parallel num_threads(team_size)
  {
    std::vector<float> query_transposed(head_dim * kQueryTile);     // (D, queries), scaled
    std::vector<float> grad_out_transposed(head_dim * kQueryTile);  // (D, queries)
    std::vector<float> query_buffer(kQueryTile * padded_dim);       // (queries, padded D)
    std::vector<float> grad_out_buffer(kQueryTile * padded_dim);    // (queries, padded D)
    std::vector<float> key_buffer(kKeyTile * padded_dim);           // (keys, padded D)
    std::vector<float> probabilities(kKeyTile * kQueryTile);        // P^T (keys, queries)
    std::vector<float> score_grads(kKeyTile * kQueryTile);          // dP^T, then dS^T
    std::vector<float> grad_query(kQueryTile * padded_dim);         // (queries, padded D)
    std::vector<float> lse_log2(kQueryTile);
    std::vector<float> output_dot_grad(kQueryTile);  // D_i = <dO_i, O_i>
    std::vector<float> grad_key_values;  // (2, key tiles of the split, kKeyTile, padded D)

#pragma omp for schedule(dynamic)
    for (std::int64_t item = 0; item < items; ++item) {
      const std::int64_t split = item % splits;
      const std::int64_t kv_head = (item / splits) % shape.kv_heads;
      const std::int64_t batch = item / (splits * shape.kv_heads);
      // Split s owns key tiles s, s + splits, ...: interleaved, so causal work stays balanced.
      const std::int64_t owned_tiles = ceil_div(key_tiles - split, splits);
      const std::int64_t accumulator_size = owned_tiles * kKeyTile * padded_dim;
      grad_key_values.assign(2 * accumulator_size, 0.0f);
      float* grad_key_accumulator = grad_key_values.data();
      float* grad_value_accumulator = grad_key_values.data() + accumulator_size;
      const float* k_head = k_data + slices.key_head_offset(batch, kv_head);
      const float* v_head = v_data + slices.key_head_offset(batch, kv_head);

      for (std::int64_t head = kv_head * slices.group_size();
           head < (kv_head + 1) * slices.group_size(); ++head) {
        for (std::int64_t query_tile = 0; query_tile < query_tiles; ++query_tile) {
          const std::int64_t query_begin = query_tile * kQueryTile;
          const std::int64_t queries = std::min(kQueryTile, shape.query_length - query_begin);
          const std::int64_t row_offset =
              slices.query_head_offset(batch, head) + query_begin * head_dim;
          const float* q_rows = q_data + row_offset;
          const float* grad_out_rows = grad_out_data + row_offset;
          const float* out_rows = out_data + row_offset;
          const float* lse_row = lse_data + slices.lse_offset(batch, head) + query_begin;

          pack_transposed(q_rows, queries, head_dim, score_scale, query_transposed.data());
          pack_transposed(grad_out_rows, queries, head_dim, 1.0f, grad_out_transposed.data());
          const float* query_padded =
              padded_rows(q_rows, queries, head_dim, padded_dim, query_buffer.data());
          const float* grad_out_padded =
              padded_rows(grad_out_rows, queries, head_dim, padded_dim, grad_out_buffer.data());
          for (std::int64_t i = 0; i < kQueryTile; ++i) {
            // Padding queries and rows that saw no key get lse +inf, hence probabilities 0.
            const bool row = i < queries && lse_row[i] != negative_infinity();
            lse_log2[i] = row ? lse_row[i] * kLog2E : std::numeric_limits<float>::infinity();
            float dot = 0.0f;
            for (std::int64_t d = 0; i < queries && d < head_dim; ++d) {
              dot += grad_out_rows[i * head_dim + d] * out_rows[i * head_dim + d];
            }
            output_dot_grad[i] = dot;
          }
          std::fill(grad_query.begin(), grad_query.end(), 0.0f);

          for (std::int64_t owned = 0; owned < owned_tiles; ++owned) {
            const std::int64_t key_begin = (split + owned * splits) * kKeyTile;
            const std::int64_t keys = std::min(kKeyTile, shape.key_length - key_begin);
            const TileVisibility visibility =
                mask.classify(query_begin, query_begin + queries, key_begin, key_begin + keys);
            if (visibility == TileVisibility::hidden) {
              continue;
            }
            float* grad_key_tile = grad_key_accumulator + owned * kKeyTile * padded_dim;
            float* grad_value_tile = grad_value_accumulator + owned * kKeyTile * padded_dim;
            // P^T = exp2(log2-domain scores - lse * log2(e)), (keys, queries).
            tile_product(keys, kQueryTile, head_dim, {k_head + key_begin * head_dim, head_dim, 1},
                         query_transposed.data(), kQueryTile, {probabilities.data(), kQueryTile},
                         false);
            if (visibility == TileVisibility::partial) {
              mask_tile(mask, query_begin, queries, key_begin, keys, probabilities.data());
            }
            for (std::int64_t r = 0; r < keys; ++r) {
              for (int vec = 0; vec < kQueryVectors; ++vec) {
                float* p = probabilities.data() + r * kQueryTile + vec * kVectorWidth;
                store_vector(p, exp2_vector(load_vector(p) -
                                            load_vector(lse_log2.data() + vec * kVectorWidth)));
              }
            }
            // dV (keys, padded D) += P^T dO.
            tile_product(keys, padded_dim, queries, {probabilities.data(), kQueryTile, 1},
                         grad_out_padded, padded_dim, {grad_value_tile, padded_dim}, true);
            // dP^T (keys, queries) = V dO^T.
            tile_product(keys, kQueryTile, head_dim, {v_head + key_begin * head_dim, head_dim, 1},
                         grad_out_transposed.data(), kQueryTile, {score_grads.data(), kQueryTile},
                         false);
            // dS^T = scale * P^T * (dP^T - D): the scale of both dQ and dK folded in once.
            const FloatVector scale = broadcast(shape.scale);
            for (std::int64_t r = 0; r < keys; ++r) {
              for (int vec = 0; vec < kQueryVectors; ++vec) {
                const std::int64_t at = r * kQueryTile + vec * kVectorWidth;
                const FloatVector delta = load_vector(output_dot_grad.data() + vec * kVectorWidth);
                store_vector(score_grads.data() + at,
                             scale * load_vector(probabilities.data() + at) *
                                 (load_vector(score_grads.data() + at) - delta));
              }
            }
            // dK (keys, padded D) += dS^T Q.
            tile_product(keys, padded_dim, queries, {score_grads.data(), kQueryTile, 1},
                         query_padded, padded_dim, {grad_key_tile, padded_dim}, true);
            // dQ (queries, padded D) += dS K.
            const float* keys_padded = padded_rows(k_head + key_begin * head_dim, keys, head_dim,
                                                   padded_dim, key_buffer.data());
            tile_product(queries, padded_dim, keys, {score_grads.data(), 1, kQueryTile},
                         keys_padded, padded_dim, {grad_query.data(), padded_dim}, true);
          }

          float* grad_q_rows = grad_q_target + split * q.numel() + row_offset;
          for (std::int64_t i = 0; i < queries; ++i) {
            std::copy(grad_query.data() + i * padded_dim,
                      grad_query.data() + i * padded_dim + head_dim, grad_q_rows + i * head_dim);
          }
        }
      }

      for (std::int64_t owned = 0; owned < owned_tiles; ++owned) {
        const std::int64_t key_begin = (split + owned * splits) * kKeyTile;
        const std::int64_t keys = std::min(kKeyTile, shape.key_length - key_begin);
        const std::int64_t row_offset =
            slices.key_head_offset(batch, kv_head) + key_begin * head_dim;
        for (std::int64_t r = 0; r < keys; ++r) {
          const std::int64_t at = (owned * kKeyTile + r) * padded_dim;
          std::copy(grad_key_accumulator + at, grad_key_accumulator + at + head_dim,
                    grad_k_data + row_offset + r * head_dim);
          std::copy(grad_value_accumulator + at, grad_value_accumulator + at + head_dim,
                    grad_v_data + row_offset + r * head_dim);
        }
      }
    }

    if (splits > 1) {
      // dQ = sum over splits in slot order, so the bits do not depend on the schedule.
      const std::int64_t elements = q.numel();
      const float* partials = grad_q_partials.data<float>();
#pragma omp for schedule(static)
      for (std::int64_t e = 0; e < elements; ++e) {
        float sum = partials[e];
        for (std::int64_t s = 1; s < splits; ++s) {
          sum += partials[s * elements + e];
        }
        grad_q_data[e] = sum;
      }
    }
  }
}

}  // namespace longseq::cpu
