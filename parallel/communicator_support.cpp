#include "parallel/communicator_support.h"

#include <cmath>
#include <cstdlib>
#include <string>

namespace longseq {

std::chrono::milliseconds communication_timeout_from_environment() {
  const char* text = std::getenv("LONGSEQ_COMM_TIMEOUT_S");
  if (text == nullptr || *text == '\0') {
    return kDefaultCommunicationTimeout;
  }
  char* end = nullptr;
  const double seconds = std::strtod(text, &end);
  LONGSEQ_REQUIRE(end != text && *end == '\0' && std::isfinite(seconds) && seconds > 0,
                  "[communicator] LONGSEQ_COMM_TIMEOUT_S='{}' is not a positive number of seconds",
                  text);
  // At least one millisecond: a positive setting must never mean "no time at all".
  const auto milliseconds = static_cast<std::int64_t>(std::ceil(seconds * 1000.0));
  return std::chrono::milliseconds(milliseconds);
}

void check_timeout(std::chrono::milliseconds timeout) {
  LONGSEQ_REQUIRE(timeout.count() > 0, "[communicator] timeout must be positive, got {} ms",
                  timeout.count());
}

std::string_view reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum:
      return "sum";
    case ReduceOp::max:
      return "max";
    case ReduceOp::min:
      return "min";
  }
  return "unknown";
}

void check_buffer(std::string_view op, const Tensor& buffer, Device device) {
  LONGSEQ_CHECK(buffer.defined(), "[{}] undefined buffer", op);
  LONGSEQ_CHECK(buffer.device() == device, "[{}] buffer {} must be on {} for this communicator", op,
                buffer.describe(), device_name(device));
  LONGSEQ_CHECK(buffer.is_contiguous(), "[{}] buffer {} must be contiguous", op, buffer.describe());
}

void check_reducible(std::string_view op, DType dtype) {
  LONGSEQ_CHECK(
      dtype == DType::f32 || dtype == DType::f64 || dtype == DType::i32,
      "[{}] reductions are defined on fp32, fp64 and i32 buffers, not {}; convert to fp32 "
      "first",
      op, dtype_name(dtype));
}

void check_peer(std::string_view op, int peer, int size) {
  LONGSEQ_CHECK(peer >= 0 && peer < size, "[{}] peer {} is outside the group of {} ranks", op, peer,
                size);
}

std::int64_t check_counts(std::string_view op, std::span<const std::int64_t> counts, int size,
                          std::string_view which) {
  LONGSEQ_CHECK(counts.size() == static_cast<std::size_t>(size),
                "[{}] {} counts has {} entries; the group has {} ranks", op, which, counts.size(),
                size);
  std::int64_t total = 0;
  for (std::size_t r = 0; r < counts.size(); ++r) {
    LONGSEQ_CHECK(counts[r] >= 0, "[{}] {} count for rank {} is negative ({})", op, which, r,
                  counts[r]);
    total += counts[r];
  }
  return total;
}

std::int64_t all_reduce_volume(std::int64_t bytes, int size) {
  return 2 * (size - 1) * bytes / size;
}

std::int64_t all_gather_volume(std::int64_t input_bytes, int size) {
  return (size - 1) * input_bytes;
}

std::int64_t exclusive_scan_volume(std::int64_t bytes, int rank, int size) {
  return rank < size - 1 ? bytes : 0;
}

std::int64_t broadcast_volume(std::int64_t bytes, int rank, int root, int size) {
  return rank == root ? (size - 1) * bytes : 0;
}

std::string timeout_message(std::string_view op, const Deadline& deadline, std::string_view what) {
  return fmt::format(
      "[{}] timed out after {:.2f} s (timeout {:g} s, LONGSEQ_COMM_TIMEOUT_S) waiting for {}", op,
      deadline.elapsed_seconds(), deadline.timeout_seconds(), what);
}

}  // namespace longseq
