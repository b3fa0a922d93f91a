#include "kernels/rpe_attention.h"

#include <algorithm>

#include "kernels/backends.h"
#include "kernels/rpe_attention_backends.h"
#include "kernels/tensor_checks.h"
#include "kernels/toeplitz.h"

namespace longseq {

namespace {

// Bytes of one (B, H, N, block columns) buffer of a feature block.
constexpr std::int64_t kColumnBudgetBytes = std::int64_t{32} << 20;
// Diagonal leaves of the causal split: direct below this many positions (O(n leaf) per column,
// cheaper than the FFT's overhead at this size and exact).
constexpr std::int64_t kCausalLeaf = 32;

bool on_cpu(const Tensor& tensor) { return tensor.device() == Device::cpu; }

void require_f32(const char* op, const Tensor& tensor) {
  LONGSEQ_REQUIRE(tensor.dtype() == DType::f32, "[{}] takes fp32 tensors, got {}", op,
                  tensor.describe());
}

// q (B, H, Nq, Dk), k (B, H, Nk, Dk), v (B, H, Nk, Dv), weights (H, Nq + Nk - 1), fp32 on one
// device.
void check_block(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                 const Tensor& weights) {
  LONGSEQ_CHECK(q.rank() == 4 && k.rank() == 4 && v.rank() == 4,
                "[{}] q, k, v must be (B, H, N, D), got {}, {}, {}", op, q.describe(), k.describe(),
                v.describe());
  require_f32(op, q);
  check_contiguous(op, "q", q);
  check_tensor(op, "k", k, {q.size(0), q.size(1), k.size(2), q.size(3)}, q.dtype(), q.device());
  check_tensor(op, "v", v, {q.size(0), q.size(1), k.size(2), v.size(3)}, q.dtype(), q.device());
  check_tensor(op, "weights", weights, {q.size(1), q.size(2) + k.size(2) - 1}, q.dtype(),
               q.device());
}

Shape numerator_shape(const Tensor& q, const Tensor& v) {
  return {q.size(0), q.size(1), q.size(2), v.size(3) + 1};
}

Tensor block_buffer(const Tensor& like, std::int64_t length, std::int64_t columns) {
  return Tensor::empty({like.size(0), like.size(1), length, columns}, DType::f32, like.device());
}

void outer_columns(ComputeContext& context, const RpeColumnBlock& block, const Tensor& rows,
                   const Tensor& values, const Tensor& columns) {
  const auto kernel = on_cpu(rows) ? cpu::rpe_outer_columns : cuda::rpe_outer_columns;
  kernel(context, block, rows, values, columns);
}

void contract_columns(ComputeContext& context, const RpeColumnBlock& block, const Tensor& rows,
                      const Tensor& values, const Tensor& columns, const Tensor& grad_rows,
                      const Tensor& out_values) {
  const auto kernel = on_cpu(rows) ? cpu::rpe_contract_columns : cuda::rpe_contract_columns;
  kernel(context, block, rows, values, columns, grad_rows, out_values);
}

void require_causal_on_cpu(const Tensor& x) {
  LONGSEQ_REQUIRE(on_cpu(x),
                  "[rpe_attention] causal diagonal blocks run on the CPU only for now (the exact "
                  "causal split has no CUDA kernels yet); got {}",
                  x.describe());
}

// Level s of the split of a causal diagonal block of n positions: the pairs m with queries
// [2 s m + s, 2 s m + 2 s) and keys [2 s m, 2 s m + s), all with keys before their queries (the
// query rows past n are padding). Every pair has the same offsets -(2 s - 1) .. -1, so one
// Toeplitz product serves them all, the pairs side by side as columns.
struct CausalLevel {
  std::int64_t length = 0;  // n
  std::int64_t half = 0;    // s

  [[nodiscard]] std::int64_t pairs() const { return (length - half + 2 * half - 1) / (2 * half); }
  [[nodiscard]] RpeRowBlocks keys() const { return {0, 2 * half, pairs(), half}; }
  [[nodiscard]] RpeRowBlocks queries() const { return {half, 2 * half, pairs(), half}; }
  // The level's weights (G, 2 s - 1) within the block's (G, 2 n - 1), as row blocks of the
  // (1, G, 2 n - 1, 1) view: entries before the start (offsets < -(n - 1), met only by padding
  // rows) read 0.
  [[nodiscard]] RpeRowBlocks weights() const { return {length - 2 * half, 0, 1, 2 * half - 1}; }
};

Tensor as_rows(const Tensor& weights) {
  return weights.reshape({1, weights.size(0), weights.size(1), 1});
}

Tensor packed_buffer(const Tensor& like, const RpeRowBlocks& blocks, bool zeroed) {
  const Shape shape{like.size(0), like.size(1), blocks.rows, blocks.count * like.size(3)};
  return zeroed ? Tensor::zeros(shape, DType::f32, like.device())
                : Tensor::empty(shape, DType::f32, like.device());
}

Tensor level_weights(ComputeContext& context, const CausalLevel& level, const Tensor& weights) {
  const RpeRowBlocks blocks = level.weights();
  const Tensor t = Tensor::empty({1, weights.size(0), blocks.rows, 1}, DType::f32);
  cpu::rpe_gather_rows(context, blocks, as_rows(weights), t);
  return t.reshape({weights.size(0), blocks.rows});
}

// y = T x for a causal diagonal block, weights (G, 2n - 1), x and y (B, G, n, F): the block split
// in halves recursively (done level by level: the leaves directly, then at every level the
// (second half queries, first half keys) pairs by one FFT product). No FFT holds a key after any
// of its queries, so future keys leave past outputs bit-identical, and every key of an FFT column
// weighs in all of its rows (the round-off stays relative to what the rows see).
void causal_product(ComputeContext& context, const Tensor& weights, const Tensor& x,
                    const Tensor& y) {
  require_causal_on_cpu(x);
  const std::int64_t length = x.size(2);
  y.zero();
  cpu::rpe_causal_leaves(context, kCausalLeaf, weights, x, y);
  for (std::int64_t half = kCausalLeaf; half < length; half *= 2) {
    const CausalLevel level{length, half};
    const Tensor t = level_weights(context, level, weights);
    const Tensor keys = packed_buffer(x, level.keys(), false);
    const Tensor products = packed_buffer(x, level.queries(), false);
    cpu::rpe_gather_rows(context, level.keys(), x, keys);
    toeplitz_product(context, t, keys, products);
    cpu::rpe_scatter_add_rows(context, level.queries(), products, y);
  }
}

// The backward of causal_product, accumulated into grad_x and grad_weights (either undefined: not
// wanted): each level's grad_t lands in the entries of the block's weights its offsets cover.
void causal_product_backward(ComputeContext& context, const Tensor& weights, const Tensor& x,
                             const Tensor& grad_y, const Tensor& grad_x,
                             const Tensor& grad_weights) {
  require_causal_on_cpu(x);
  const std::int64_t length = x.size(2);
  cpu::rpe_causal_leaves_backward(context, kCausalLeaf, weights, x, grad_y, grad_x, grad_weights);
  for (std::int64_t half = kCausalLeaf; half < length; half *= 2) {
    const CausalLevel level{length, half};
    const Tensor t = level_weights(context, level, weights);
    const Tensor keys = packed_buffer(x, level.keys(), false);
    const Tensor grad_products = packed_buffer(x, level.queries(), false);
    cpu::rpe_gather_rows(context, level.keys(), x, keys);
    cpu::rpe_gather_rows(context, level.queries(), grad_y, grad_products);
    const Tensor grad_keys = grad_x.defined() ? packed_buffer(x, level.keys(), true) : Tensor();
    const Tensor grad_t =
        grad_weights.defined() ? Tensor::zeros(t.shape(), DType::f32, t.device()) : Tensor();
    toeplitz_product_backward(context, t, keys, grad_products, grad_keys, grad_t, true);
    if (grad_x.defined()) {
      cpu::rpe_scatter_add_rows(context, level.keys(), grad_keys, grad_x);
    }
    if (grad_weights.defined()) {
      cpu::rpe_scatter_add_rows(context, level.weights(),
                                grad_t.reshape({1, t.size(0), t.size(1), 1}),
                                as_rows(grad_weights));
    }
  }
}

// The block's Toeplitz product, by the causal split where the block is a causal diagonal one.
void block_product(ComputeContext& context, RpeBlockKind kind, const Tensor& weights,
                   const Tensor& x, const Tensor& y) {
  if (kind == RpeBlockKind::causal_diagonal) {
    causal_product(context, weights, x, y);
  } else {
    toeplitz_product(context, weights, x, y);
  }
}

// The whole sequence is one diagonal block.
RpeBlockKind whole_kind(const RpeAttentionOptions& options) {
  return options.causal ? RpeBlockKind::causal_diagonal : RpeBlockKind::full;
}

void check_kind(const char* op, RpeBlockKind kind, const Tensor& q, const Tensor& k) {
  LONGSEQ_CHECK(kind != RpeBlockKind::causal_diagonal || q.size(2) == k.size(2),
                "[{}] a causal diagonal block has as many queries as keys, got {} and {}", op,
                q.size(2), k.size(2));
}

}  // namespace

std::int64_t rpe_block_first_entry(std::int64_t length, std::int64_t query_begin,
                                   std::int64_t query_count, std::int64_t key_begin) {
  return key_begin - query_begin - (query_count - 1) + length - 1;
}

std::int64_t rpe_feature_block(std::int64_t batch, std::int64_t heads, std::int64_t length,
                               std::int64_t key_dim, std::int64_t value_dim) {
  const std::int64_t per_feature =
      std::max<std::int64_t>(1, batch * heads * length * (value_dim + 1) * 4);
  return std::clamp<std::int64_t>(kColumnBudgetBytes / per_feature, 1, key_dim);
}

void rpe_position_weights(ComputeContext& context, const Tensor& b, bool causal, std::int64_t first,
                          const Tensor& weights) {
  constexpr const char* kOp = "rpe_position_weights";
  LONGSEQ_CHECK(b.rank() == 2 && b.size(1) % 2 == 1 && weights.rank() == 2,
                "[{}] b must be (H, 2N - 1), weights (H, count); got {}, {}", kOp, b.describe(),
                weights.describe());
  require_f32(kOp, b);
  check_contiguous(kOp, "b", b);
  check_tensor(kOp, "weights", weights, {b.size(0), weights.size(1)}, b.dtype(), b.device());
  LONGSEQ_CHECK(first >= 0 && first + weights.size(1) <= b.size(1),
                "[{}] entries [{}, {}) outside b {}", kOp, first, first + weights.size(1),
                b.describe());
  const auto kernel = on_cpu(b) ? cpu::rpe_position_weights : cuda::rpe_position_weights;
  kernel(context, b, causal, first, weights);
}

void rpe_position_weights_backward(ComputeContext& context, const Tensor& weights,
                                   const Tensor& grad_weights, std::int64_t first,
                                   const Tensor& grad_b) {
  constexpr const char* kOp = "rpe_position_weights_backward";
  LONGSEQ_CHECK(weights.rank() == 2 && grad_b.rank() == 2, "[{}] weights and grad_b must be 2-D",
                kOp);
  check_like(kOp, "grad_weights", grad_weights, weights);
  check_tensor(kOp, "grad_b", grad_b, {weights.size(0), grad_b.size(1)}, weights.dtype(),
               weights.device());
  LONGSEQ_CHECK(first >= 0 && first + weights.size(1) <= grad_b.size(1),
                "[{}] entries [{}, {}) outside grad_b {}", kOp, first, first + weights.size(1),
                grad_b.describe());
  const auto kernel =
      on_cpu(weights) ? cpu::rpe_position_weights_backward : cuda::rpe_position_weights_backward;
  kernel(context, weights, grad_weights, first, grad_b);
}

void rpe_attention_block_forward(ComputeContext& context, const Tensor& q, const Tensor& k,
                                 const Tensor& v, const Tensor& weights, const Tensor& numerator,
                                 RpeBlockKind kind) {
  constexpr const char* kOp = "rpe_attention_block_forward";
  check_block(kOp, q, k, v, weights);
  check_kind(kOp, kind, q, k);
  check_tensor(kOp, "numerator", numerator, numerator_shape(q, v), DType::f32, q.device());
  const std::int64_t dk = q.size(3);
  const std::int64_t width = v.size(3) + 1;
  const std::int64_t step =
      rpe_feature_block(q.size(0), q.size(1), std::max(q.size(2), k.size(2)), dk, v.size(3));
  for (std::int64_t a0 = 0; a0 < dk; a0 += step) {
    const RpeColumnBlock block{a0, std::min(step, dk - a0), width, true};
    const std::int64_t columns = block.features * width;
    const Tensor x = block_buffer(k, k.size(2), columns);  // phi_a(k_j) [v_j | 1]_e
    const Tensor y = block_buffer(q, q.size(2), columns);  // sum_j c_{j - i} x_j
    outer_columns(context, block, k, v, x);
    block_product(context, kind, weights, x, y);
    contract_columns(context, block, q, Tensor(), y, Tensor(), numerator);
  }
}

void rpe_attention_readout(ComputeContext& context, const Tensor& numerator, float eps,
                           const Tensor& out) {
  constexpr const char* kOp = "rpe_attention_readout";
  LONGSEQ_CHECK(out.rank() == 4, "[{}] out must be (B, H, N, Dv), got {}", kOp, out.describe());
  require_f32(kOp, out);
  check_contiguous(kOp, "out", out);
  check_tensor(kOp, "numerator", numerator,
               {out.size(0), out.size(1), out.size(2), out.size(3) + 1}, DType::f32, out.device());
  LONGSEQ_REQUIRE(eps > 0.0f, "[{}] eps must be positive, got {}", kOp, eps);
  const auto kernel = on_cpu(out) ? cpu::rpe_readout : cuda::rpe_readout;
  kernel(context, numerator, eps, out);
}

void rpe_attention_readout_backward(ComputeContext& context, const Tensor& numerator,
                                    const Tensor& grad_out, float eps, const Tensor& readout_grad) {
  constexpr const char* kOp = "rpe_attention_readout_backward";
  LONGSEQ_CHECK(grad_out.rank() == 4, "[{}] grad_out must be (B, H, N, Dv), got {}", kOp,
                grad_out.describe());
  require_f32(kOp, grad_out);
  check_contiguous(kOp, "grad_out", grad_out);
  check_tensor(kOp, "numerator", numerator,
               {grad_out.size(0), grad_out.size(1), grad_out.size(2), grad_out.size(3) + 1},
               DType::f32, grad_out.device());
  check_like(kOp, "readout_grad", readout_grad, numerator);
  const auto kernel = on_cpu(grad_out) ? cpu::rpe_readout_backward : cuda::rpe_readout_backward;
  kernel(context, numerator, grad_out, eps, readout_grad);
}

void rpe_attention_block_backward(ComputeContext& context, const Tensor& q, const Tensor& k,
                                  const Tensor& v, const Tensor& weights,
                                  const Tensor& readout_grad, const Tensor& grad_q,
                                  const Tensor& grad_k, const Tensor& grad_v,
                                  const Tensor& grad_weights, RpeBlockKind kind) {
  constexpr const char* kOp = "rpe_attention_block_backward";
  check_block(kOp, q, k, v, weights);
  check_kind(kOp, kind, q, k);
  check_tensor(kOp, "readout_grad", readout_grad, numerator_shape(q, v), DType::f32, q.device());
  if (grad_q.defined()) {
    check_like(kOp, "grad_q", grad_q, q);
  }
  LONGSEQ_CHECK(grad_k.defined() == grad_v.defined(),
                "[{}] grad_k and grad_v are wanted together or not at all", kOp);
  if (grad_k.defined()) {
    check_like(kOp, "grad_k", grad_k, k);
    check_like(kOp, "grad_v", grad_v, v);
  }
  if (grad_weights.defined()) {
    check_like(kOp, "grad_weights", grad_weights, weights);
  }
  const std::int64_t dk = q.size(3);
  const std::int64_t width = v.size(3) + 1;
  const std::int64_t step =
      rpe_feature_block(q.size(0), q.size(1), std::max(q.size(2), k.size(2)), dk, v.size(3));
  for (std::int64_t a0 = 0; a0 < dk; a0 += step) {
    const RpeColumnBlock keys{a0, std::min(step, dk - a0), width, true};
    const RpeColumnBlock queries{a0, keys.features, width, false};
    const std::int64_t columns = keys.features * width;
    const Tensor x = block_buffer(k, k.size(2), columns);  // phi_a(k_j) [v_j | 1]_e
    outer_columns(context, keys, k, v, x);
    if (grad_q.defined()) {
      // dL/d phi_a(q_i) = sum_e W'_ie y_i,(a, e): the product is recomputed, not stored.
      const Tensor y = block_buffer(q, q.size(2), columns);
      block_product(context, kind, weights, x, y);
      contract_columns(context, queries, q, readout_grad, y, grad_q, Tensor());
    }
    if (!grad_k.defined() && !grad_weights.defined()) {
      continue;
    }
    // dL/d y_i,(a, e) = phi_a(q_i) W'_ie; back through the Toeplitz product to x and the weights.
    const Tensor grad_y = block_buffer(q, q.size(2), columns);
    outer_columns(context, queries, q, readout_grad, grad_y);
    // Both gradients accumulate: grad_weights over the feature blocks, grad_x from zero.
    const Tensor grad_x =
        grad_k.defined()
            ? Tensor::zeros({k.size(0), k.size(1), k.size(2), columns}, DType::f32, k.device())
            : Tensor();
    if (kind == RpeBlockKind::causal_diagonal) {
      causal_product_backward(context, weights, x, grad_y, grad_x, grad_weights);
    } else {
      toeplitz_product_backward(context, weights, x, grad_y, grad_x, grad_weights, true);
    }
    if (grad_k.defined()) {
      contract_columns(context, keys, k, v, grad_x, grad_k, grad_v);
    }
  }
}

void rpe_attention_forward(ComputeContext& context, const Tensor& q, const Tensor& k,
                           const Tensor& v, const Tensor& b, const RpeAttentionOptions& options,
                           const Tensor& out) {
  constexpr const char* kOp = "rpe_attention_forward";
  const std::int64_t length = q.size(2);
  LONGSEQ_CHECK(k.size(2) == length, "[{}] q and k must have the same length", kOp);
  LONGSEQ_CHECK(b.rank() == 2 && b.size(1) == 2 * length - 1,
                "[{}] b must be (H, 2N - 1) = ({}, {}), got {}", kOp, q.size(1), 2 * length - 1,
                b.describe());
  const Tensor weights = Tensor::empty({q.size(1), 2 * length - 1}, DType::f32, q.device());
  rpe_position_weights(context, b, options.causal, 0, weights);
  const Tensor numerator = Tensor::zeros(numerator_shape(q, v), DType::f32, q.device());
  rpe_attention_block_forward(context, q, k, v, weights, numerator, whole_kind(options));
  rpe_attention_readout(context, numerator, options.eps, out);
}

void rpe_attention_backward(ComputeContext& context, const Tensor& q, const Tensor& k,
                            const Tensor& v, const Tensor& b, const Tensor& grad_out,
                            const RpeAttentionOptions& options, const Tensor& grad_q,
                            const Tensor& grad_k, const Tensor& grad_v, const Tensor& grad_b) {
  constexpr const char* kOp = "rpe_attention_backward";
  const std::int64_t length = q.size(2);
  LONGSEQ_CHECK(k.size(2) == length, "[{}] q and k must have the same length", kOp);
  LONGSEQ_CHECK(b.rank() == 2 && b.size(1) == 2 * length - 1,
                "[{}] b must be (H, 2N - 1) = ({}, {}), got {}", kOp, q.size(1), 2 * length - 1,
                b.describe());
  const Tensor weights = Tensor::empty({q.size(1), 2 * length - 1}, DType::f32, q.device());
  rpe_position_weights(context, b, options.causal, 0, weights);
  const Tensor numerator = Tensor::zeros(numerator_shape(q, v), DType::f32, q.device());
  rpe_attention_block_forward(context, q, k, v, weights, numerator, whole_kind(options));
  const Tensor readout_grad = Tensor::empty(numerator.shape(), DType::f32, q.device());
  rpe_attention_readout_backward(context, numerator, grad_out, options.eps, readout_grad);
  for (const Tensor& grad : {grad_q, grad_k, grad_v}) {
    if (grad.defined()) {
      grad.zero();
    }
  }
  const Tensor grad_weights =
      grad_b.defined() ? Tensor::zeros(weights.shape(), DType::f32, q.device()) : Tensor();
  rpe_attention_block_backward(context, q, k, v, weights, readout_grad, grad_q, grad_k, grad_v,
                               grad_weights, whole_kind(options));
  if (grad_b.defined()) {
    grad_b.zero();
    rpe_position_weights_backward(context, weights, grad_weights, 0, grad_b);
  }
}

double rpe_attention_block_forward_flops(std::int64_t batch, std::int64_t heads,
                                         std::int64_t query_length, std::int64_t key_length,
                                         std::int64_t key_dim, std::int64_t value_dim) {
  const std::int64_t columns = key_dim * (value_dim + 1);
  const double pointwise = 2.0 * static_cast<double>(batch * heads * columns) *
                           static_cast<double>(query_length + key_length);
  return toeplitz_product_flops(batch, heads, query_length, key_length, columns) + pointwise;
}

double rpe_attention_block_backward_flops(std::int64_t batch, std::int64_t heads,
                                          std::int64_t query_length, std::int64_t key_length,
                                          std::int64_t key_dim, std::int64_t value_dim) {
  const std::int64_t columns = key_dim * (value_dim + 1);
  const double pointwise = 6.0 * static_cast<double>(batch * heads * columns) *
                           static_cast<double>(query_length + key_length);
  return toeplitz_product_flops(batch, heads, query_length, key_length, columns) +
         toeplitz_product_backward_flops(batch, heads, query_length, key_length, columns) +
         pointwise;
}

}  // namespace longseq
