#include "parallel/local_attention_parallel.h"

#include <algorithm>
#include <limits>
#include <memory>
#include <tuple>
#include <utility>
#include <vector>

#include "kernels/attention.h"
#include "parallel/sequence_chunks.h"
#include "parallel/sequence_rows.h"
#include "parallel/shard_checks.h"
#include "parallel/stats_scope.h"
#include "runtime/timer.h"

namespace longseq {

namespace {

constexpr const char* kOp = "distributed_local_attention";
// The halo's K/V rows travel to the rank that needs them; their gradients travel home.
constexpr int kHaloTag = 4101;
constexpr int kHaloGradientTag = 4102;

// A run of consecutive valid positions of one rank and its halo: the `halo` positions
// [global_begin - halo, global_begin) of the chunk the run starts in, held by earlier runs.
struct Run {
  std::int64_t local_begin = 0;
  std::int64_t global_begin = 0;
  std::int64_t valid = 0;
  std::int64_t halo = 0;
};

std::vector<Run> runs_of(const SequenceLayout& layout, int rank, std::int64_t chunk) {
  std::vector<Run> runs;
  for (const LayoutRun& run : layout.runs(rank)) {
    LONGSEQ_CHECK(run.stride == 1, "[{}] runs of stride {} have no chunks", kOp, run.stride);
    if (run.valid_length > 0) {
      runs.push_back(
          {run.local_begin, run.global_begin, run.valid_length, run.global_begin % chunk});
    }
  }
  return runs;
}

// One halo row in message order (the receiver's runs in order, positions increasing): which run
// of the receiver, its offset in that run's halo, and its local index on the sender.
struct HaloRow {
  std::size_t run = 0;
  std::int64_t offset = 0;
  std::int64_t sender_local = 0;
};

// The rows of `receiver`'s halos that `sender` holds; both sides compute the same list.
std::vector<HaloRow> halo_rows(const SequenceLayout& layout, std::int64_t chunk, int receiver,
                               int sender) {
  std::vector<HaloRow> rows;
  const std::vector<Run> runs = runs_of(layout, receiver, chunk);
  for (std::size_t r = 0; r < runs.size(); ++r) {
    const std::int64_t first = runs[r].global_begin - runs[r].halo;
    for (std::int64_t offset = 0; offset < runs[r].halo; ++offset) {
      const auto [owner, local] = layout.owner(first + offset);
      if (owner == sender) {
        rows.push_back({r, offset, local});
      }
    }
  }
  return rows;
}

// The queries of one run that lie in one chunk: local rows [local_begin, local_begin + length) at
// global positions from global_begin. They see the keys from global_begin - halo on (a run's
// first piece has its run's halo, later pieces start their chunk).
struct Piece {
  std::size_t run = 0;
  std::int64_t local_begin = 0;
  std::int64_t global_begin = 0;
  std::int64_t length = 0;
  std::int64_t halo = 0;
};

std::vector<Piece> pieces_of(const std::vector<Run>& runs, std::int64_t chunk) {
  std::vector<Piece> pieces;
  for (std::size_t r = 0; r < runs.size(); ++r) {
    const std::int64_t end = runs[r].global_begin + runs[r].valid;
    for (std::int64_t position = runs[r].global_begin; position < end;) {
      const std::int64_t next = std::min(end, (position / chunk + 1) * chunk);
      pieces.push_back({r, runs[r].local_begin + position - runs[r].global_begin, position,
                        next - position, position == runs[r].global_begin ? runs[r].halo : 0});
      position = next;
    }
  }
  return pieces;
}

// Rows (B, H, count, D) of a shard to be overwritten: the shard itself when that is all of it.
Tensor rows_to_write(const Tensor& shard, std::int64_t begin, std::int64_t count,
                     int sequence_dim = 2) {
  if (begin == 0 && count == shard.size(sequence_dim)) {
    return shard;
  }
  Shape shape = shard.shape();
  shape[sequence_dim] = count;
  return Tensor::empty(shape, DType::f32);
}

// shard[:, :, local, :] += rows[:, :, index, :] for contiguous fp32 (B, H, *, D) tensors.
void add_row(const Tensor& rows, std::int64_t index, const Tensor& shard, std::int64_t local) {
  const std::int64_t outer = shard.size(0) * shard.size(1);
  const std::int64_t width = shard.size(3);
  const float* from = rows.data<float>();
  float* to = shard.data<float>();
  for (std::int64_t o = 0; o < outer; ++o) {
    const float* source = from + (o * rows.size(2) + index) * width;
    float* destination = to + (o * shard.size(2) + local) * width;
    for (std::int64_t d = 0; d < width; ++d) {
      destination[d] += source[d];
    }
  }
}

// A message of `count` K-like and V-like rows: (2, B, H, count, D); part(0) is K's, part(1) V's.
struct PairMessage {
  Tensor buffer;

  PairMessage(const Tensor& like, std::int64_t count)
      : buffer(Tensor::empty({2, like.size(0), like.size(1), count, like.size(3)}, DType::f32)) {}
  [[nodiscard]] Tensor part(int which) const {
    return buffer.slice(0, which, which + 1)
        .reshape({buffer.size(1), buffer.size(2), buffer.size(3), buffer.size(4)});
  }
};

void copy_row(const Tensor& from, std::int64_t from_row, const Tensor& to, std::int64_t to_row) {
  copy_rows(SequenceRows::of(from, 2), from_row, 1, SequenceRows::of(to, 2), to_row, 1, 1);
}

// Everything one call works on.
struct Work {
  ComputeContext& context;
  Communicator& communicator;
  const SequenceLayout& layout;
  const LocalAttentionConfig& config;
  DistributedAttentionStats& stats;
  std::vector<Run> runs;
  std::vector<Piece> pieces;

  [[nodiscard]] AttentionOptions options(const Piece& piece) const {
    AttentionOptions options;
    options.causal = true;
    options.scale = config.scale;
    options.query_offset = piece.global_begin;
    options.key_offset = piece.global_begin - piece.halo;
    return options;
  }
};

Work make_work(ComputeContext& context, Communicator& communicator, const SequenceLayout& layout,
               const LocalAttentionConfig& config, DistributedAttentionStats& stats) {
  Work work{context, communicator, layout, config, stats, {}, {}};
  work.runs = runs_of(layout, communicator.rank(), config.chunk);
  work.pieces = pieces_of(work.runs, config.chunk);
  return work;
}

// Point-to-point messages in flight: started by post_*, completed by wait(), which books the
// time spent waiting as exposed communication.
class Exchange {
 public:
  explicit Exchange(DistributedAttentionStats& stats) : stats_(stats) {}
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;
  ~Exchange() {
    // Unwinding from an error: the buffers must outlive the requests.
    for (const std::unique_ptr<Request>& request : requests_) {
      try {
        request->wait();
      } catch (...) {
      }
    }
  }

  void post_send(Communicator& communicator, const Tensor& buffer, int peer, int tag) {
    buffers_.push_back(buffer);
    requests_.push_back(communicator.isend(buffer, peer, tag));
  }
  void post_receive(Communicator& communicator, const Tensor& buffer, int peer, int tag) {
    buffers_.push_back(buffer);
    requests_.push_back(communicator.irecv(buffer, peer, tag));
  }
  void wait() {
    const WallTimer timer;
    for (const std::unique_ptr<Request>& request : requests_) {
      request->wait();
    }
    requests_.clear();
    buffers_.clear();
    stats_.exposed_communication_seconds += timer.seconds();
    stats_.communication_seconds += since_start_.seconds();
  }

 private:
  DistributedAttentionStats& stats_;
  WallTimer since_start_;
  std::vector<Tensor> buffers_;
  std::vector<std::unique_ptr<Request>> requests_;
};

// The K and V rows of this rank's halos, (B, Hkv, halo, D) per run, gathered from their owners.
class Halo {
 public:
  // Posts the receives and sends and copies the rows this rank holds itself.
  Halo(Work& work, const Tensor& k, const Tensor& v) : exchange_(work.stats) {
    for (const Run& run : work.runs) {
      k_.push_back(Tensor::empty({k.size(0), k.size(1), run.halo, k.size(3)}, DType::f32));
      v_.push_back(Tensor::empty({v.size(0), v.size(1), run.halo, v.size(3)}, DType::f32));
    }
    Communicator& communicator = work.communicator;
    const int me = communicator.rank();
    for (int peer = 0; peer < communicator.size(); ++peer) {
      std::vector<HaloRow> incoming = halo_rows(work.layout, work.config.chunk, me, peer);
      if (peer == me) {
        for (const HaloRow& row : incoming) {
          copy_row(k, row.sender_local, k_[row.run], row.offset);
          copy_row(v, row.sender_local, v_[row.run], row.offset);
        }
        continue;
      }
      if (!incoming.empty()) {
        const PairMessage message(k, static_cast<std::int64_t>(incoming.size()));
        exchange_.post_receive(communicator, message.buffer, peer, kHaloTag);
        incoming_.push_back({message, std::move(incoming)});
      }
      const std::vector<HaloRow> outgoing = halo_rows(work.layout, work.config.chunk, peer, me);
      if (!outgoing.empty()) {
        const PairMessage message(k, static_cast<std::int64_t>(outgoing.size()));
        for (std::size_t i = 0; i < outgoing.size(); ++i) {
          copy_row(k, outgoing[i].sender_local, message.part(0), static_cast<std::int64_t>(i));
          copy_row(v, outgoing[i].sender_local, message.part(1), static_cast<std::int64_t>(i));
        }
        exchange_.post_send(communicator, message.buffer, peer, kHaloTag);
      }
    }
  }

  // Waits for the rows of the other ranks and puts them in place.
  void finish() {
    exchange_.wait();
    for (const Incoming& message : incoming_) {
      for (std::size_t i = 0; i < message.rows.size(); ++i) {
        const HaloRow& row = message.rows[i];
        copy_row(message.message.part(0), static_cast<std::int64_t>(i), k_[row.run], row.offset);
        copy_row(message.message.part(1), static_cast<std::int64_t>(i), v_[row.run], row.offset);
      }
    }
    incoming_.clear();
  }

  [[nodiscard]] const Tensor& k(std::size_t run) const { return k_[run]; }
  [[nodiscard]] const Tensor& v(std::size_t run) const { return v_[run]; }

 private:
  struct Incoming {
    PairMessage message;
    std::vector<HaloRow> rows;
  };
  Exchange exchange_;
  std::vector<Tensor> k_, v_;
  std::vector<Incoming> incoming_;
};

// The keys (B, Hkv, halo + length, D) a piece sees: its run's halo, then its own rows.
Tensor piece_keys(const Piece& piece, const Tensor& shard, const Tensor& halo) {
  if (piece.halo == 0) {
    return chunk_rows(shard, piece.local_begin, piece.length);
  }
  const Tensor keys = Tensor::empty(
      {shard.size(0), shard.size(1), piece.halo + piece.length, shard.size(3)}, DType::f32);
  copy_rows(SequenceRows::of(halo, 2), 0, 1, SequenceRows::of(keys, 2), 0, 1, piece.halo);
  copy_rows(SequenceRows::of(shard, 2), piece.local_begin, 1, SequenceRows::of(keys, 2), piece.halo,
            1, piece.length);
  return keys;
}

void forward_piece(Work& work, const Piece& piece, const Halo& halo, const Tensor& q,
                   const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse) {
  timed_compute(work.stats, [&] {
    const Tensor piece_out = rows_to_write(out, piece.local_begin, piece.length);
    const Tensor piece_lse = rows_to_write(lse, piece.local_begin, piece.length);
    flash_attention_forward(work.context, chunk_rows(q, piece.local_begin, piece.length),
                            piece_keys(piece, k, halo.k(piece.run)),
                            piece_keys(piece, v, halo.v(piece.run)), work.options(piece), piece_out,
                            piece_lse);
    place_rows(piece_out, out, piece.local_begin);
    place_rows(piece_lse, lse, piece.local_begin);
  });
}

// The gradients of the halo rows of this rank's runs, (B, Hkv, halo, D) per run.
struct HaloGradients {
  std::vector<Tensor> k, v;
};

void backward_piece(Work& work, const Piece& piece, const Halo& halo, const Tensor& q,
                    const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                    const Tensor& grad_out, const Tensor& grad_q, const Tensor& grad_k,
                    const Tensor& grad_v, HaloGradients& halo_gradients) {
  timed_compute(work.stats, [&] {
    const Tensor piece_k = piece_keys(piece, k, halo.k(piece.run));
    const Tensor piece_v = piece_keys(piece, v, halo.v(piece.run));
    const Tensor piece_grad_q = rows_to_write(grad_q, piece.local_begin, piece.length);
    const bool own_keys = piece.halo == 0;
    const Tensor piece_grad_k = own_keys ? rows_to_write(grad_k, piece.local_begin, piece.length)
                                         : Tensor::empty(piece_k.shape(), DType::f32);
    const Tensor piece_grad_v = own_keys ? rows_to_write(grad_v, piece.local_begin, piece.length)
                                         : Tensor::empty(piece_v.shape(), DType::f32);
    flash_attention_backward(work.context, chunk_rows(q, piece.local_begin, piece.length), piece_k,
                             piece_v, chunk_rows(out, piece.local_begin, piece.length),
                             chunk_rows(lse, piece.local_begin, piece.length),
                             chunk_rows(grad_out, piece.local_begin, piece.length),
                             work.options(piece), piece_grad_q, piece_grad_k, piece_grad_v);
    place_rows(piece_grad_q, grad_q, piece.local_begin);
    if (own_keys) {
      place_rows(piece_grad_k, grad_k, piece.local_begin);
      place_rows(piece_grad_v, grad_v, piece.local_begin);
      return;
    }
    for (const auto& [from, to, halo_to] :
         {std::tuple{piece_grad_k, grad_k, halo_gradients.k[piece.run]},
          std::tuple{piece_grad_v, grad_v, halo_gradients.v[piece.run]}}) {
      copy_rows(SequenceRows::of(from, 2), 0, 1, SequenceRows::of(halo_to, 2), 0, 1, piece.halo);
      copy_rows(SequenceRows::of(from, 2), piece.halo, 1, SequenceRows::of(to, 2),
                piece.local_begin, 1, piece.length);
    }
  });
}

// Sends the halo rows' gradients to the ranks holding those rows and adds the ones this rank
// holds (its own and those that come back) into grad_k and grad_v.
void return_halo_gradients(Work& work, const HaloGradients& halo_gradients, const Tensor& grad_k,
                           const Tensor& grad_v) {
  Communicator& communicator = work.communicator;
  const int me = communicator.rank();
  Exchange exchange(work.stats);
  std::vector<std::pair<PairMessage, std::vector<HaloRow>>> incoming;
  for (int peer = 0; peer < communicator.size(); ++peer) {
    const std::vector<HaloRow> outgoing = halo_rows(work.layout, work.config.chunk, me, peer);
    if (peer == me) {
      for (const HaloRow& row : outgoing) {
        add_row(halo_gradients.k[row.run], row.offset, grad_k, row.sender_local);
        add_row(halo_gradients.v[row.run], row.offset, grad_v, row.sender_local);
      }
      continue;
    }
    if (!outgoing.empty()) {
      const PairMessage message(grad_k, static_cast<std::int64_t>(outgoing.size()));
      for (std::size_t i = 0; i < outgoing.size(); ++i) {
        const auto at = static_cast<std::int64_t>(i);
        copy_row(halo_gradients.k[outgoing[i].run], outgoing[i].offset, message.part(0), at);
        copy_row(halo_gradients.v[outgoing[i].run], outgoing[i].offset, message.part(1), at);
      }
      exchange.post_send(communicator, message.buffer, peer, kHaloGradientTag);
    }
    std::vector<HaloRow> rows = halo_rows(work.layout, work.config.chunk, peer, me);
    if (!rows.empty()) {
      const PairMessage message(grad_k, static_cast<std::int64_t>(rows.size()));
      exchange.post_receive(communicator, message.buffer, peer, kHaloGradientTag);
      incoming.emplace_back(message, std::move(rows));
    }
  }
  exchange.wait();
  for (const auto& [message, rows] : incoming) {
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const auto at = static_cast<std::int64_t>(i);
      add_row(message.part(0), at, grad_k, rows[i].sender_local);
      add_row(message.part(1), at, grad_v, rows[i].sender_local);
    }
  }
}

void forward_in_pieces(Work& work, const Tensor& q, const Tensor& k, const Tensor& v,
                       const Tensor& out, const Tensor& lse) {
  Halo halo(work, k, v);
  // The pieces that start their chunk need nothing from elsewhere: they hide the halo's travel.
  for (const Piece& piece : work.pieces) {
    if (piece.halo == 0) {
      forward_piece(work, piece, halo, q, k, v, out, lse);
    }
  }
  halo.finish();
  for (const Piece& piece : work.pieces) {
    if (piece.halo > 0) {
      forward_piece(work, piece, halo, q, k, v, out, lse);
    }
  }
}

void backward_in_pieces(Work& work, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& out, const Tensor& lse, const Tensor& grad_out,
                        const Tensor& grad_q, const Tensor& grad_k, const Tensor& grad_v) {
  Halo halo(work, k, v);
  HaloGradients halo_gradients;
  for (const Run& run : work.runs) {
    halo_gradients.k.push_back(
        Tensor::empty({k.size(0), k.size(1), run.halo, k.size(3)}, DType::f32));
    halo_gradients.v.push_back(
        Tensor::empty({v.size(0), v.size(1), run.halo, v.size(3)}, DType::f32));
  }
  for (const Piece& piece : work.pieces) {
    if (piece.halo == 0) {
      backward_piece(work, piece, halo, q, k, v, out, lse, grad_out, grad_q, grad_k, grad_v,
                     halo_gradients);
    }
  }
  halo.finish();
  for (const Piece& piece : work.pieces) {
    if (piece.halo > 0) {
      backward_piece(work, piece, halo, q, k, v, out, lse, grad_out, grad_q, grad_k, grad_v,
                     halo_gradients);
    }
  }
  return_halo_gradients(work, halo_gradients, grad_k, grad_v);
}

// Sets the padding rows of a shard (B, H, S[, D]) to `value`.
void fill_padding(const SequenceLayout& layout, int rank, const Tensor& shard, float value) {
  for (const LayoutRun& run : layout.runs(rank)) {
    fill_rows(SequenceRows::of(shard, 2), run.local_begin + run.valid_length,
              run.length - run.valid_length, value);
  }
}

void validate(const Communicator& communicator, const SequenceLayout& layout,
              const LocalAttentionConfig& config, const Tensor& q, const Tensor& k,
              const Tensor& v) {
  LONGSEQ_REQUIRE(config.chunk >= 1, "[{}] the chunk must hold at least one position, got {}", kOp,
                  config.chunk);
  require_host_sequence_group(kOp, communicator, layout);
  require_qkv_cpu_shards(kOp, layout, {&q, &k, &v});
  LONGSEQ_REQUIRE(k.shape() == v.shape(), "[{}] k {} and v {} differ in shape", kOp, k.describe(),
                  v.describe());
}

}  // namespace

void distributed_local_attention_forward(ComputeContext& context, Communicator& communicator,
                                         const SequenceLayout& layout,
                                         const LocalAttentionConfig& config, const Tensor& q,
                                         const Tensor& k, const Tensor& v, const Tensor& out,
                                         const Tensor& lse, DistributedAttentionStats* stats) {
  validate(communicator, layout, config, q, k, v);
  StatsScope scope(communicator, stats);
  const int rank = communicator.rank();
  compute_on_chunks(communicator, layout, scope.stats(), {q, k, v}, {2, 2, 2}, {out, lse}, {2, 2},
                    [&](const SequenceLayout& chunked, const std::vector<Tensor>& in,
                        const std::vector<Tensor>& results) {
                      Work work = make_work(context, communicator, chunked, config, scope.stats());
                      forward_in_pieces(work, in[0], in[1], in[2], results[0], results[1]);
                    });
  fill_padding(layout, rank, out, 0.0f);
  fill_padding(layout, rank, lse, -std::numeric_limits<float>::infinity());
}

void distributed_local_attention_backward(ComputeContext& context, Communicator& communicator,
                                          const SequenceLayout& layout,
                                          const LocalAttentionConfig& config, const Tensor& q,
                                          const Tensor& k, const Tensor& v, const Tensor& out,
                                          const Tensor& lse, const Tensor& grad_out,
                                          const Tensor& grad_q, const Tensor& grad_k,
                                          const Tensor& grad_v, DistributedAttentionStats* stats) {
  validate(communicator, layout, config, q, k, v);
  StatsScope scope(communicator, stats);
  const int rank = communicator.rank();
  compute_on_chunks(communicator, layout, scope.stats(), {q, k, v, out, lse, grad_out},
                    {2, 2, 2, 2, 2, 2}, {grad_q, grad_k, grad_v}, {2, 2, 2},
                    [&](const SequenceLayout& chunked, const std::vector<Tensor>& in,
                        const std::vector<Tensor>& grads) {
                      Work work = make_work(context, communicator, chunked, config, scope.stats());
                      backward_in_pieces(work, in[0], in[1], in[2], in[3], in[4], in[5], grads[0],
                                         grads[1], grads[2]);
                    });
  for (const Tensor* grad : {&grad_q, &grad_k, &grad_v}) {
    fill_padding(layout, rank, *grad, 0.0f);
  }
}

double local_attention_forward_flops(std::int64_t batch, std::int64_t heads, std::int64_t length,
                                     std::int64_t head_dim, std::int64_t chunk) {
  double squares = 0.0;
  for (std::int64_t begin = 0; begin < length; begin += chunk) {
    const auto size = static_cast<double>(std::min(chunk, length - begin));
    squares += size * size;
  }
  return 2.0 * squares * static_cast<double>(head_dim) * static_cast<double>(batch * heads);
}

}  // namespace longseq
