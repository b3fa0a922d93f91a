// What the communicator backends share: argument checks, the communication-volume convention of
// bytes_sent(), the timeout setting and the wording of timeout errors. Every check throws naming
// the operation ("[all_reduce] ...").
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "parallel/communicator.h"
#include "parallel/deadline.h"

namespace longseq {

inline constexpr std::chrono::milliseconds kDefaultCommunicationTimeout{300'000};

// LONGSEQ_COMM_TIMEOUT_S (seconds, fractions allowed) when set, else kDefaultCommunicationTimeout;
// UserError when the variable is not a positive number.
std::chrono::milliseconds communication_timeout_from_environment();
// UserError unless timeout > 0.
void check_timeout(std::chrono::milliseconds timeout);

std::string_view reduce_op_name(ReduceOp op);

// Contiguous, defined, on `device`.
void check_buffer(std::string_view op, const Tensor& buffer, Device device);
// Reductions are defined on f32, f64 and i32 only (the 16-bit floats would round differently per
// backend and per algorithm; reduce them in fp32).
void check_reducible(std::string_view op, DType dtype);
void check_peer(std::string_view op, int peer, int size);
// `size` non-negative counts; returns their sum. `which` is "send" or "receive".
std::int64_t check_counts(std::string_view op, std::span<const std::int64_t> counts, int size,
                          std::string_view which);

// bytes_sent() convention, the same for every backend and independent of the algorithm the library
// picks: the bytes this rank sends in the textbook algorithm of each operation.
//   point to point     the message
//   all_reduce         2 (P-1)/P of the buffer (ring reduce-scatter + all-gather; nccl-tests' bus
//                      bandwidth convention)
//   all_gather         (P-1) times the input (ring)
//   all_to_all_v       the elements sent to other ranks
//   exclusive_scan     the input, on every rank but the last (a chain)
//   broadcast          (P-1) times the buffer on the root, nothing elsewhere
//   barrier            nothing
std::int64_t all_reduce_volume(std::int64_t bytes, int size);
std::int64_t all_gather_volume(std::int64_t input_bytes, int size);
std::int64_t exclusive_scan_volume(std::int64_t bytes, int rank, int size);
std::int64_t broadcast_volume(std::int64_t bytes, int rank, int root, int size);

// "[irecv] timed out after 0.50 s (timeout 0.5 s) waiting for <what>".
std::string timeout_message(std::string_view op, const Deadline& deadline, std::string_view what);

}  // namespace longseq
