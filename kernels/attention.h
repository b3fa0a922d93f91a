// Exact softmax attention: the materialised baseline and flash attention (tiled, online softmax).
//
// Layouts (contiguous):
//   q            (B, Hq, Nq, D)
//   k, v         (B, Hkv, Nk, D)   Hq % Hkv == 0 (grouped-query attention: query head h reads
//                                   key/value head h / (Hq / Hkv))
//   out          (B, Hq, Nq, D)    same dtype as q
//   lse          (B, Hq, Nq) fp32  natural-log log-sum-exp of the scaled scores of each row;
//                                   -inf for a row that sees no key (its output row is 0)
// CPU: fp32. CUDA: bf16 and fp16 inputs with fp32 accumulation (and fp32).
#pragma once

#include <cstdint>
#include <optional>

#include "runtime/context.h"
#include "runtime/tensor.h"

namespace longseq {

struct AttentionOptions {
  // Score scale tau; 0 means 1/sqrt(D).
  float scale = 0.0f;
  bool causal = false;
  // Global positions of the first query row and the first key row. With causal masking, query i
  // sees key j iff key_offset + j <= query_offset + i. Without a query_offset the alignment is
  // bottom-right: query_offset = key_offset + Nk - Nq (the last query sees the last key). A ring
  // step passes both offsets explicitly.
  std::optional<std::int64_t> query_offset;
  std::int64_t key_offset = 0;
  // Optional block-sparse mask, u8 of shape (ceil(Nq / mask_block_q), ceil(Nk / mask_block_k)),
  // shared by every batch entry and head: a 0 entry removes that block of scores. Undefined: dense.
  Tensor block_mask;
  std::int64_t mask_block_q = 128;
  std::int64_t mask_block_k = 128;
};

// The geometry of one attention call, checked and resolved once by the dispatcher.
struct AttentionShape {
  std::int64_t batch = 0;
  std::int64_t query_heads = 0;
  std::int64_t kv_heads = 0;
  std::int64_t query_length = 0;
  std::int64_t key_length = 0;
  std::int64_t head_dim = 0;
  float scale = 0.0f;
  bool causal = false;
  std::int64_t query_offset = 0;
  std::int64_t key_offset = 0;
};

// Validates the tensors of a forward call ("[op] ..." errors) and resolves scale and offsets.
AttentionShape attention_shape(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                               const AttentionOptions& options);

// Whether block (query block qb, key block kb) of the user's block mask is kept (true when there
// is no mask).
bool block_mask_allows(const AttentionOptions& options, std::int64_t query_block,
                       std::int64_t key_block);

void flash_attention_forward(ComputeContext& context, const Tensor& q, const Tensor& k,
                             const Tensor& v, const AttentionOptions& options, const Tensor& out,
                             const Tensor& lse);

// grad_q (like q), grad_k and grad_v (like k and v) are overwritten. `out` and `lse` are the
// forward results (in a ring, the globally merged ones).
void flash_attention_backward(ComputeContext& context, const Tensor& q, const Tensor& k,
                              const Tensor& v, const Tensor& out, const Tensor& lse,
                              const Tensor& grad_out, const AttentionOptions& options,
                              const Tensor& grad_q, const Tensor& grad_k, const Tensor& grad_v);

// The same contract with the (B, H, Nq, Nk) score matrix materialised: the memory baseline.
void softmax_attention_forward(ComputeContext& context, const Tensor& q, const Tensor& k,
                               const Tensor& v, const AttentionOptions& options, const Tensor& out,
                               const Tensor& lse);
void softmax_attention_backward(ComputeContext& context, const Tensor& q, const Tensor& k,
                                const Tensor& v, const Tensor& out, const Tensor& lse,
                                const Tensor& grad_out, const AttentionOptions& options,
                                const Tensor& grad_q, const Tensor& grad_k, const Tensor& grad_v);

// FLOP conventions (stated in benchmark output): forward 4 * Nq * Nk * D per (batch, head),
// halved for causal self-attention; backward 2.5 x forward (five products instead of two).
double attention_forward_flops(const AttentionShape& shape);
double attention_backward_flops(const AttentionShape& shape);

}  // namespace longseq
