#include "parallel/block_attention.h"

#include <algorithm>
#include <array>
#include <utility>

#include "kernels/merge.h"
#include "runtime/timer.h"

namespace longseq {

namespace {

std::int64_t floor_div(std::int64_t value, std::int64_t divisor) {
  const std::int64_t quotient = value / divisor;
  return (value % divisor != 0 && (value < 0) != (divisor < 0)) ? quotient - 1 : quotient;
}

// Rows [begin, begin + count) of an (S, D) head as a (1, 1, count, D) kernel operand.
Tensor head_rows(const Tensor& head, std::int64_t begin, std::int64_t count) {
  return head.slice(0, begin, begin + count).reshape({1, 1, count, head.size(-1)});
}

// Entries [begin, begin + count) of an (S) lse row as (1, 1, count).
Tensor lse_rows(const Tensor& lse, std::int64_t begin, std::int64_t count) {
  return lse.slice(0, begin, begin + count).reshape({1, 1, count});
}

}  // namespace

Tensor head_slice(const Tensor& tensor, std::int64_t batch, std::int64_t head) {
  Shape rows(tensor.shape().begin() + 2, tensor.shape().end());
  return tensor.slice(0, batch, batch + 1).slice(1, head, head + 1).reshape(std::move(rows));
}

void accumulate(const Tensor& into, const Tensor& addend) {
  LONGSEQ_CHECK(into.numel() == addend.numel() && into.is_contiguous() && addend.is_contiguous(),
                "[accumulate] {} += {}", into.describe(), addend.describe());
  float* target = into.data<float>();
  const float* source = addend.data<float>();
  const std::int64_t count = into.numel();
  for (std::int64_t i = 0; i < count; ++i) {
    target[i] += source[i];
  }
}

BlockAttention::BlockAttention(ComputeContext& context, const SequenceLayout& layout, int rank,
                               const DistributedAttentionConfig& config, std::int64_t head_dim,
                               std::int64_t query_chunk, std::function<void()> between_pieces)
    : context_(context),
      layout_(layout),
      rank_(rank),
      config_(config),
      head_dim_(head_dim),
      query_chunk_(std::min(query_chunk, layout.shard_length())),
      between_pieces_(std::move(between_pieces)) {
  LONGSEQ_CHECK(query_chunk >= 1, "[block_attention] query chunk {}", query_chunk);
  const std::int64_t chunk = query_chunk_;
  partial_out_ = Tensor::empty({chunk, head_dim}, DType::f32);
  partial_lse_ = Tensor::empty({chunk}, DType::f32);
}

template <typename Visit>
void BlockAttention::for_each_piece(int owner, Visit&& visit) {
  const std::vector<LayoutRun> key_runs = layout_.runs(owner);
  for (const LayoutRun& query_run : layout_.runs(rank_)) {
    for (std::int64_t chunk = 0; chunk < query_run.valid_length; chunk += query_chunk_) {
      const std::int64_t queries = std::min(query_chunk_, query_run.valid_length - chunk);
      for (const LayoutRun& key_run : key_runs) {
        if (key_run.valid_length == 0) {
          continue;
        }
        Piece piece{query_run.local_begin + chunk, queries, key_run.local_begin,
                    key_run.valid_length, 0};
        if (config_.causal) {
          piece.query_offset =
              chunk + floor_div(query_run.global_begin - key_run.global_begin, query_run.stride);
          // The last query sees keys 0 .. query_offset + queries - 1.
          piece.keys = std::min(piece.keys, piece.query_offset + queries);
          if (piece.keys <= 0) {
            ++pieces_skipped_;
            continue;
          }
        }
        const WallTimer timer;
        visit(piece);
        compute_seconds_ += timer.seconds();
        ++pieces_computed_;
        if (between_pieces_) {
          between_pieces_();
        }
      }
    }
  }
}

AttentionOptions BlockAttention::options_for(const Piece& piece) const {
  AttentionOptions options;
  options.scale = config_.scale;
  options.causal = config_.causal;
  options.query_offset = piece.query_offset;
  options.key_offset = 0;
  return options;
}

void BlockAttention::forward(const Tensor& q_head, const Tensor& k_block, const Tensor& v_block,
                             int owner, const Tensor& out_head, const Tensor& lse_head) {
  const auto kernel = config_.kernel == AttentionKernel::flash ? flash_attention_forward
                                                               : softmax_attention_forward;
  for_each_piece(owner, [&](const Piece& piece) {
    const Tensor partial_out = head_rows(partial_out_, 0, piece.queries);
    const Tensor partial_lse = lse_rows(partial_lse_, 0, piece.queries);
    kernel(context_, head_rows(q_head, piece.query_begin, piece.queries),
           head_rows(k_block, piece.key_begin, piece.keys),
           head_rows(v_block, piece.key_begin, piece.keys), options_for(piece), partial_out,
           partial_lse);
    const Tensor out = head_rows(out_head, piece.query_begin, piece.queries);
    const Tensor lse = lse_rows(lse_head, piece.query_begin, piece.queries);
    const std::array<Tensor, 2> outs{out, partial_out};
    const std::array<Tensor, 2> lses{lse, partial_lse};
    merge_attention_forward(context_, outs, lses, out, lse);
  });
}

void BlockAttention::backward(const Tensor& q_head, const Tensor& k_block, const Tensor& v_block,
                              int owner, const Tensor& out_head, const Tensor& lse_head,
                              const Tensor& grad_out_head, const Tensor& grad_q_head,
                              const Tensor& grad_k_block, const Tensor& grad_v_block) {
  const auto kernel = config_.kernel == AttentionKernel::flash ? flash_attention_backward
                                                               : softmax_attention_backward;
  if (!grad_k_piece_.defined()) {
    grad_q_piece_ = Tensor::empty(partial_out_.shape(), DType::f32);
    grad_k_piece_ = Tensor::empty({layout_.shard_length(), head_dim_}, DType::f32);
    grad_v_piece_ = Tensor::empty({layout_.shard_length(), head_dim_}, DType::f32);
  }
  for_each_piece(owner, [&](const Piece& piece) {
    const Tensor grad_q = head_rows(grad_q_piece_, 0, piece.queries);
    const Tensor grad_k = head_rows(grad_k_piece_, 0, piece.keys);
    const Tensor grad_v = head_rows(grad_v_piece_, 0, piece.keys);
    kernel(context_, head_rows(q_head, piece.query_begin, piece.queries),
           head_rows(k_block, piece.key_begin, piece.keys),
           head_rows(v_block, piece.key_begin, piece.keys),
           head_rows(out_head, piece.query_begin, piece.queries),
           lse_rows(lse_head, piece.query_begin, piece.queries),
           head_rows(grad_out_head, piece.query_begin, piece.queries), options_for(piece), grad_q,
           grad_k, grad_v);
    accumulate(head_rows(grad_q_head, piece.query_begin, piece.queries), grad_q);
    accumulate(head_rows(grad_k_block, piece.key_begin, piece.keys), grad_k);
    accumulate(head_rows(grad_v_block, piece.key_begin, piece.keys), grad_v);
  });
}

}  // namespace longseq
