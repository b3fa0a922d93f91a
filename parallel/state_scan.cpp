#include "parallel/state_scan.h"

#include <memory>
#include <vector>

namespace longseq {

namespace {

// Tags of the chain's messages: the position of the receiving chunk in scan order.
constexpr int kTagBase = 7000;

void add_into(const Tensor& sum, const Tensor& term) {
  float* to = sum.data<float>();
  const float* from = term.data<float>();
  for (std::int64_t i = 0; i < sum.numel(); ++i) {
    to[i] += from[i];
  }
}

// Chunks in the order the scan visits them.
std::vector<std::int64_t> scan_order(std::int64_t chunks, ScanDirection direction) {
  std::vector<std::int64_t> order(static_cast<std::size_t>(chunks));
  for (std::int64_t t = 0; t < chunks; ++t) {
    order[t] = direction == ScanDirection::forward ? t : chunks - 1 - t;
  }
  return order;
}

// Index of chunk c in its owner's local list (owners' chunks are listed in increasing order).
std::int64_t local_index(std::span<const int> owners, std::int64_t chunk) {
  std::int64_t index = 0;
  for (std::int64_t c = 0; c < chunk; ++c) {
    index += owners[c] == owners[chunk] ? 1 : 0;
  }
  return index;
}

void chain_scan(Communicator& communicator, ScanDirection direction, const StateMonoid& monoid,
                std::span<const int> owners, std::span<const Tensor> local,
                std::span<const Tensor> result) {
  const int me = communicator.rank();
  const std::vector<std::int64_t> order =
      scan_order(static_cast<std::int64_t>(owners.size()), direction);
  std::vector<std::unique_ptr<Request>> sends;
  std::vector<Tensor> send_buffers;
  Tensor running;  // composition up to and including the last chunk this rank visited
  for (std::size_t t = 0; t < order.size(); ++t) {
    const std::int64_t chunk = order[t];
    if (owners[chunk] != me) {
      continue;
    }
    const Tensor& incoming = result[local_index(owners, chunk)];
    if (t == 0) {
      monoid.identity(incoming);
    } else if (owners[order[t - 1]] == me) {
      incoming.copy_from(running);
    } else {
      communicator.irecv(incoming, owners[order[t - 1]], kTagBase + static_cast<int>(t))->wait();
    }
    if (t + 1 == order.size()) {
      continue;
    }
    running = incoming.clone();
    monoid.combine(running, local[local_index(owners, chunk)]);
    const int next = owners[order[t + 1]];
    if (next != me) {
      send_buffers.push_back(running);
      sends.push_back(communicator.isend(running, next, kTagBase + static_cast<int>(t + 1)));
    }
  }
  for (const std::unique_ptr<Request>& send : sends) {
    send->wait();
  }
}

void all_gather_scan(Communicator& communicator, ScanDirection direction,
                     const StateMonoid& monoid, std::span<const int> owners, std::span<const std::int64_t> mine,
                     std::span<const Tensor> local, std::span<const Tensor> result) {
  const std::int64_t size = local.empty() ? 0 : local[0].numel();
  const auto per_rank = static_cast<std::int64_t>(local.size());
  const Tensor packed = Tensor::empty({per_rank * size}, DType::f32);
  for (std::int64_t i = 0; i < per_rank; ++i) {
    packed.slice(0, i * size, (i + 1) * size).copy_from(local[i].reshape({size}));
  }
  const Tensor gathered = Tensor::empty({communicator.size() * per_rank * size}, DType::f32);
  communicator.all_gather(packed, gathered);
  const std::vector<std::int64_t> order =
      scan_order(static_cast<std::int64_t>(owners.size()), direction);
  for (std::size_t i = 0; i < mine.size(); ++i) {
    const Tensor acc = result[i].reshape({size});
    monoid.identity(acc);
    for (const std::int64_t chunk : order) {
      if (chunk == mine[i]) {
        break;
      }
      const std::int64_t at = owners[chunk] * per_rank + local_index(owners, chunk);
      monoid.combine(acc, gathered.slice(0, at * size, (at + 1) * size));
    }
  }
}

}  // namespace

std::string_view state_scan_name(StateScanStrategy strategy) {
  return strategy == StateScanStrategy::chain ? "chain" : "allgather";
}

StateScanStrategy parse_state_scan(std::string_view name) {
  for (const StateScanStrategy strategy :
       {StateScanStrategy::chain, StateScanStrategy::all_gather}) {
    if (name == state_scan_name(strategy)) {
      return strategy;
    }
  }
  throw UserError(
      LONGSEQ_FORMAT("[state_scan] unknown strategy '{}' (expected chain or allgather)", name));
}

StateMonoid sum_monoid() {
  return {add_into, [](const Tensor& state) { state.zero(); }};
}

void exclusive_state_scan(Communicator& communicator, StateScanStrategy strategy,
                          ScanDirection direction, std::span<const int> owners,
                          std::span<const std::int64_t> mine, std::span<const Tensor> local,
                          std::span<const Tensor> result) {
  exclusive_state_scan(communicator, strategy, direction, sum_monoid(), owners, mine, local,
                       result);
}

void exclusive_state_scan(Communicator& communicator, StateScanStrategy strategy,
                          ScanDirection direction, const StateMonoid& monoid,
                          std::span<const int> owners, std::span<const std::int64_t> mine,
                          std::span<const Tensor> local, std::span<const Tensor> result) {
  LONGSEQ_CHECK(mine.size() == local.size() && mine.size() == result.size(),
                "[state_scan] {} chunks, {} states, {} results", mine.size(), local.size(),
                result.size());
  for (std::size_t i = 0; i < mine.size(); ++i) {
    LONGSEQ_CHECK(owners[mine[i]] == communicator.rank() && (i == 0 || mine[i - 1] < mine[i]),
                  "[state_scan] chunk {} is not this rank's or out of order", mine[i]);
  }
  if (strategy == StateScanStrategy::chain) {
    chain_scan(communicator, direction, monoid, owners, local, result);
  } else {
    all_gather_scan(communicator, direction, monoid, owners, mine, local, result);
  }
}

}  // namespace longseq
