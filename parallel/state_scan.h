// Exclusive scans of per-chunk recurrent states across the ranks of a communicator: the cross-rank
// handoff of the state-passing mixers. Linear attention sums its states (MECHANISMS.md section 3);
// momentum attention and the state-space models compose affine maps (h <- A^L h + h_local), and
// Performer rescales by running maxima: any associative composition (a StateMonoid) scans.
//
// The sequence is cut into chunks 0 .. C-1 in global order; owners[c] is the rank holding chunk
// c, and each rank holds the same number of chunks. A rank passes the states of its own chunks
// (flat fp32 CPU tensors of one size) and receives, for each of them, the sum of the states of
// every chunk before it (forward) or after it (reverse); the identity when there is none.
// Compositions run in scan order starting from the identity, the same order in both strategies:
//   chain      the running sum travels along the chunks' owners with isend / irecv: C - 1 hops of
//              one state; a rank forwards as soon as it has added its chunk
//   allgather  every rank all-gathers every chunk's state and sums the ones before (after) its own
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>

#include "parallel/communicator.h"
#include "runtime/tensor.h"

namespace longseq {

enum class StateScanStrategy : std::uint8_t { chain, all_gather };
enum class ScanDirection : std::uint8_t { forward, reverse };

std::string_view state_scan_name(StateScanStrategy strategy);
// "chain" or "allgather"; throws UserError otherwise.
StateScanStrategy parse_state_scan(std::string_view name);

// An associative composition of flat fp32 states. combine(acc, next) replaces `acc` (everything
// the scan has visited so far) with acc followed by `next` (the next chunk in scan order: later
// chunks in a forward scan, earlier ones in a reverse scan). identity(state) sets the state of no
// chunk at all.
struct StateMonoid {
  std::function<void(const Tensor& acc, const Tensor& next)> combine;
  std::function<void(const Tensor& state)> identity;
};

// Elementwise sums from zero (linear attention's states and their gradients).
StateMonoid sum_monoid();

// local[i] is the state of chunk mine[i] (mine increasing, owners[mine[i]] == this rank);
// result[i] (same size, overwritten) receives the exclusive sum for that chunk.
void exclusive_state_scan(Communicator& communicator, StateScanStrategy strategy,
                          ScanDirection direction, std::span<const int> owners,
                          std::span<const std::int64_t> mine, std::span<const Tensor> local,
                          std::span<const Tensor> result);
// The same with any associative composition; `exclusive_state_scan` above is this with sum_monoid.
void exclusive_state_scan(Communicator& communicator, StateScanStrategy strategy,
                          ScanDirection direction, const StateMonoid& monoid,
                          std::span<const int> owners, std::span<const std::int64_t> mine,
                          std::span<const Tensor> local, std::span<const Tensor> result);

}  // namespace longseq
