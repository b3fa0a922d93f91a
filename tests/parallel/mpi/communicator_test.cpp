// The MPI communicator on every rank count (the suite runs under mpirun -np 1..4). Inputs are
// chosen so that every result is an exactly representable integer (nccl-tests style): rank r
// contributes (r + 1) * (i + 1) at element i, so sums, maxima and minima are known in closed form
// and compared with ==, not a tolerance.
#include <gtest/gtest.h>
#include <mpi.h>

#include <chrono>
#include <climits>
#include <cstdint>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "parallel/mpi_communicator.h"
#include "parallel/process_groups.h"
#include "parallel/rank_grid.h"

namespace longseq {
namespace {

using namespace std::chrono_literals;

// Long enough for an oversubscribed CI machine, short enough that a hang fails the test.
constexpr std::chrono::milliseconds kTestTimeout = 60s;

class MpiCommunicatorTest : public ::testing::Test {
 protected:
  MpiCommunicator world{MPI_COMM_WORLD, "world", kTestTimeout};
  const int rank = world.rank();
  const int size = world.size();
};

// rank r, element i: (r + 1) * (i + 1).
template <typename T>
Tensor scaled_by_rank(DType dtype, int rank, std::int64_t count) {
  Tensor tensor = Tensor::empty({count}, dtype);
  T* data = tensor.data<T>();
  for (std::int64_t i = 0; i < count; ++i) {
    data[i] = static_cast<T>((rank + 1) * (i + 1));
  }
  return tensor;
}

// The error message of `call`, which must throw longseq::Error.
template <typename Call>
std::string error_of(Call&& call) {
  try {
    call();
  } catch (const Error& error) {
    return error.what();
  }
  ADD_FAILURE() << "no longseq::Error thrown";
  return {};
}

template <typename T>
void expect_all_reduce(MpiCommunicator& world, DType dtype) {
  const int rank = world.rank();
  const int size = world.size();
  constexpr std::int64_t count = 1000;
  const Tensor sum = scaled_by_rank<T>(dtype, rank, count);
  const Tensor max = scaled_by_rank<T>(dtype, rank, count);
  const Tensor min = scaled_by_rank<T>(dtype, rank, count);
  world.all_reduce(sum, ReduceOp::sum);
  world.all_reduce(max, ReduceOp::max);
  world.all_reduce(min, ReduceOp::min);
  for (std::int64_t i = 0; i < count; ++i) {
    ASSERT_EQ(sum.data<T>()[i], static_cast<T>((i + 1) * size * (size + 1) / 2)) << i;
    ASSERT_EQ(max.data<T>()[i], static_cast<T>((i + 1) * size)) << i;
    ASSERT_EQ(min.data<T>()[i], static_cast<T>(i + 1)) << i;
  }
}

TEST_F(MpiCommunicatorTest, AllReduceIsExact) {
  expect_all_reduce<float>(world, DType::f32);
  expect_all_reduce<double>(world, DType::f64);
  expect_all_reduce<std::int32_t>(world, DType::i32);
}

TEST_F(MpiCommunicatorTest, ReductionsRejectSixteenBitFloats) {
  const Tensor half = Tensor::zeros({4}, DType::bf16);
  const std::string message = error_of([&] { world.all_reduce(half, ReduceOp::sum); });
  EXPECT_EQ(message.rfind("[all_reduce] reductions are defined on fp32", 0), 0u) << message;
}

TEST_F(MpiCommunicatorTest, AllGatherIsRankMajor) {
  constexpr std::int64_t count = 7;
  const Tensor input = Tensor::empty({count}, DType::f32);
  for (std::int64_t i = 0; i < count; ++i) {
    input.data<float>()[i] = static_cast<float>(rank * 100 + i);
  }
  const Tensor output = Tensor::empty({size, count}, DType::f32);
  world.all_gather(input, output);
  for (int r = 0; r < size; ++r) {
    for (std::int64_t i = 0; i < count; ++i) {
      ASSERT_EQ(output.data<float>()[r * count + i], static_cast<float>(r * 100 + i));
    }
  }
}

// bf16 moves as raw 2-byte words: every bit pattern arrives unchanged.
TEST_F(MpiCommunicatorTest, AllGatherMovesBfloat16Bits) {
  const Tensor input = Tensor::empty({3}, DType::bf16);
  for (int i = 0; i < 3; ++i) {
    input.data<BFloat16>()[i].bits = static_cast<std::uint16_t>(0xff00 + rank * 3 + i);
  }
  const Tensor output = Tensor::empty({size * 3}, DType::bf16);
  world.all_gather(input, output);
  for (int j = 0; j < size * 3; ++j) {
    ASSERT_EQ(output.data<BFloat16>()[j].bits, 0xff00 + j);
  }
}

// Rank s sends (s + 2 d) % 3 elements to rank d (zero for some pairs, including some ranks to
// themselves); element j of that message is s * 1000 + d * 100 + j.
std::int64_t message_count(int source, int destination) { return (source + 2 * destination) % 3; }

TEST_F(MpiCommunicatorTest, AllToAllVWithUnevenAndZeroCounts) {
  std::vector<std::int64_t> send_counts;
  std::vector<std::int64_t> recv_counts;
  std::vector<std::int32_t> sent;
  std::int64_t sent_to_others = 0;
  for (int d = 0; d < size; ++d) {
    send_counts.push_back(message_count(rank, d));
    recv_counts.push_back(message_count(d, rank));
    for (std::int64_t j = 0; j < send_counts.back(); ++j) {
      sent.push_back(static_cast<std::int32_t>(rank * 1000 + d * 100 + j));
    }
    sent_to_others += d == rank ? 0 : send_counts.back();
  }
  std::int64_t received_total = 0;
  for (const std::int64_t count : recv_counts) {
    received_total += count;
  }
  const Tensor input = Tensor::empty({static_cast<std::int64_t>(sent.size())}, DType::i32);
  std::copy(sent.begin(), sent.end(), input.data<std::int32_t>());
  const Tensor output = Tensor::empty({received_total}, DType::i32);

  const std::int64_t bytes_before = world.bytes_sent();
  world.all_to_all_v(input, send_counts, output, recv_counts);
  EXPECT_EQ(world.bytes_sent() - bytes_before, sent_to_others * 4);

  std::int64_t at = 0;
  for (int s = 0; s < size; ++s) {
    for (std::int64_t j = 0; j < recv_counts[static_cast<std::size_t>(s)]; ++j, ++at) {
      ASSERT_EQ(output.data<std::int32_t>()[at], s * 1000 + rank * 100 + j) << "from " << s;
    }
  }
}

TEST_F(MpiCommunicatorTest, AllToAllVRejectsCountsThatDoNotMatchTheBuffers) {
  const Tensor input = Tensor::zeros({3}, DType::f32);
  const Tensor output = Tensor::zeros({3}, DType::f32);
  std::vector<std::int64_t> counts(static_cast<std::size_t>(size), 0);
  const std::string message = error_of([&] { world.all_to_all_v(input, counts, output, counts); });
  EXPECT_EQ(message.rfind("[all_to_all_v] send counts add up to 0", 0), 0u) << message;
}

template <typename T>
void expect_exclusive_scan(MpiCommunicator& world, DType dtype, T lowest, T highest) {
  const int rank = world.rank();
  constexpr std::int64_t count = 5;
  const Tensor input = scaled_by_rank<T>(dtype, rank, count);
  const Tensor sum = Tensor::empty({count}, dtype);
  const Tensor max = Tensor::empty({count}, dtype);
  const Tensor min = Tensor::empty({count}, dtype);
  world.exclusive_scan(input, sum, ReduceOp::sum);
  world.exclusive_scan(input, max, ReduceOp::max);
  world.exclusive_scan(input, min, ReduceOp::min);
  for (std::int64_t i = 0; i < count; ++i) {
    // Ranks 0..rank-1 contribute (r + 1) * (i + 1): their sum is (i + 1) rank (rank + 1) / 2.
    ASSERT_EQ(sum.data<T>()[i], static_cast<T>((i + 1) * rank * (rank + 1) / 2));
    ASSERT_EQ(max.data<T>()[i], rank == 0 ? lowest : static_cast<T>((i + 1) * rank));
    ASSERT_EQ(min.data<T>()[i], rank == 0 ? highest : static_cast<T>(i + 1));
  }
}

TEST_F(MpiCommunicatorTest, ExclusiveScanGivesRankZeroTheIdentity) {
  constexpr float inf = std::numeric_limits<float>::infinity();
  expect_exclusive_scan<float>(world, DType::f32, -inf, inf);
  expect_exclusive_scan<double>(world, DType::f64, -std::numeric_limits<double>::infinity(),
                                std::numeric_limits<double>::infinity());
  expect_exclusive_scan<std::int32_t>(world, DType::i32, INT_MIN, INT_MAX);
}

TEST_F(MpiCommunicatorTest, ExclusiveScanInPlace) {
  const Tensor buffer = scaled_by_rank<float>(DType::f32, rank, 4);
  world.exclusive_scan(buffer, buffer, ReduceOp::sum);
  for (std::int64_t i = 0; i < 4; ++i) {
    ASSERT_EQ(buffer.data<float>()[i], static_cast<float>((i + 1) * rank * (rank + 1) / 2));
  }
}

TEST_F(MpiCommunicatorTest, BroadcastFromEveryRoot) {
  for (int root = 0; root < size; ++root) {
    const Tensor buffer = Tensor::zeros({6}, DType::f64);
    if (rank == root) {
      for (int i = 0; i < 6; ++i) {
        buffer.data<double>()[i] = root * 10 + i;
      }
    }
    world.broadcast(buffer, root);
    for (int i = 0; i < 6; ++i) {
      ASSERT_EQ(buffer.data<double>()[i], root * 10 + i) << "root " << root;
    }
  }
}

// A barrier holds every rank until the last one arrives: rank 0 arrives late.
TEST_F(MpiCommunicatorTest, BarrierWaitsForTheLastRank) {
  world.barrier();
  const auto start = std::chrono::steady_clock::now();
  if (rank == 0) {
    std::this_thread::sleep_for(100ms);
  }
  world.barrier();
  // Ranks leave the first barrier at slightly different times: allow for that skew.
  EXPECT_GE(std::chrono::steady_clock::now() - start, 50ms);
}

TEST_F(MpiCommunicatorTest, RingExchangeWithExplicitProgress) {
  constexpr std::int64_t count = 1 << 16;  // large enough for a rendezvous protocol
  const int next = (rank + 1) % size;
  const int previous = (rank + size - 1) % size;
  const Tensor outgoing = scaled_by_rank<float>(DType::f32, rank, count);
  const Tensor incoming = Tensor::zeros({count}, DType::f32);
  const std::int64_t bytes_before = world.bytes_sent();
  auto receive = world.irecv(incoming, previous, 3);
  auto send = world.isend(outgoing, next, 3);
  EXPECT_EQ(world.bytes_sent() - bytes_before, count * 4);
  // Progress is driven only by test(), as a compute loop would between blocks.
  const auto give_up = std::chrono::steady_clock::now() + kTestTimeout;
  bool received = false;
  bool sent = false;
  while (!(received && sent) && std::chrono::steady_clock::now() < give_up) {
    received = received || receive->test();
    sent = sent || send->test();
    std::this_thread::yield();
  }
  ASSERT_TRUE(received && sent);
  const Tensor expected = scaled_by_rank<float>(DType::f32, previous, count);
  for (std::int64_t i = 0; i < count; ++i) {
    ASSERT_EQ(incoming.data<float>()[i], expected.data<float>()[i]) << i;
  }
  // Completed requests stay complete.
  EXPECT_TRUE(receive->test());
  EXPECT_NO_THROW(send->wait());
}

// A receive from a peer that never sends must fail with an error that names the operation and the
// peer, and leave the communicator usable once the request is gone (it is cancelled).
TEST_F(MpiCommunicatorTest, ReceiveFromSilentPeerTimesOut) {
  MpiCommunicator impatient(MPI_COMM_WORLD, "impatient", 200ms);
  const int peer = (rank + 1) % size;
  const Tensor buffer = Tensor::zeros({8}, DType::f32);
  {
    auto receive = impatient.irecv(buffer, peer, 99);
    const auto start = std::chrono::steady_clock::now();
    const std::string message = error_of([&] { receive->wait(); });
    EXPECT_GE(std::chrono::steady_clock::now() - start, 200ms);
    EXPECT_EQ(message.rfind("[irecv] timed out after", 0), 0u) << message;
    EXPECT_NE(message.find(fmt::format("peer {} (world rank {}) of group 'impatient'", peer, peer)),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("tag 99"), std::string::npos) << message;
  }
  // Every rank's timed-out receive is cancelled before any rank sends on the same tag: otherwise a
  // fast peer's send below could match a slow rank's first receive before it times out.
  world.barrier();
  // Still usable: an exchange with the same peer and tag now succeeds, which it would not if the
  // cancelled receive were still posted and matched the message first.
  const int previous = (rank + size - 1) % size;
  const Tensor outgoing = scaled_by_rank<float>(DType::f32, rank, 8);
  auto receive = impatient.irecv(buffer, previous, 99);
  auto send = impatient.isend(outgoing, peer, 99);
  receive->wait();
  send->wait();
  EXPECT_EQ(buffer.data<float>()[7], static_cast<float>((previous + 1) * 8));
  impatient.barrier();
}

// A collective that one rank joins late: the others time out with an error naming the group, and
// their communicator refuses further use. The late rank (patient) then completes its barrier,
// because the others keep MPI progressing inside the world barrier that follows.
TEST_F(MpiCommunicatorTest, CollectiveTimeoutNamesTheGroup) {
  if (size < 2) {
    GTEST_SKIP() << "needs a second rank to be late";
  }
  {
    MpiCommunicator late(MPI_COMM_WORLD, "late", rank == 0 ? kTestTimeout : 200ms);
    if (rank == 0) {
      std::this_thread::sleep_for(1s);
      late.barrier();
    } else {
      const std::string message = error_of([&] { late.barrier(); });
      EXPECT_EQ(message.rfind("[barrier] timed out after", 0), 0u) << message;
      EXPECT_NE(message.find(fmt::format("the {} ranks of group 'late'", size)), std::string::npos)
          << message;
      const std::string refused = error_of([&] { late.barrier(); });
      EXPECT_EQ(refused.rfind("[barrier] communicator 'late' is unusable", 0), 0u) << refused;
      world.barrier();
    }
  }
  if (rank == 0) {
    world.barrier();
  }
}

TEST_F(MpiCommunicatorTest, SplitByRankGridForEverySequenceSize) {
  for (int sequence = 1; sequence <= size; ++sequence) {
    if (size % sequence != 0) {
      continue;
    }
    const RankGrid grid = RankGrid::data_by_sequence(size, sequence);
    const ProcessGroups groups = split_process_groups(world, grid);
    for (const auto& [dimension, group] :
         {std::pair{"data", groups.data.get()}, std::pair{"sequence", groups.sequence.get()}}) {
      const std::vector<int> expected = grid.group(rank, dimension);
      ASSERT_EQ(group->size(), static_cast<int>(expected.size())) << grid.describe();
      EXPECT_EQ(group->rank(), grid.coordinate(rank, dimension)) << grid.describe();
      EXPECT_EQ(group->backend(), "mpi");
      // Which world ranks are in this group, in group order.
      const Tensor mine = Tensor::empty({1}, DType::i32);
      mine.data<std::int32_t>()[0] = rank;
      const Tensor members = Tensor::empty({group->size()}, DType::i32);
      group->all_gather(mine, members);
      for (int i = 0; i < group->size(); ++i) {
        EXPECT_EQ(members.data<std::int32_t>()[i], expected[static_cast<std::size_t>(i)])
            << grid.describe() << ' ' << dimension << " member " << i;
      }
    }
  }
}

TEST_F(MpiCommunicatorTest, TwoByTwoGridOnFourRanks) {
  if (size != 4) {
    GTEST_SKIP() << "needs 4 ranks";
  }
  const ProcessGroups groups =
      split_process_groups(world, RankGrid({{"data", 2}, {"sequence", 2}}));
  // Sequence groups {0, 1} and {2, 3}; data groups {0, 2} and {1, 3}: check with sums of ranks.
  const Tensor sequence_sum = Tensor::empty({1}, DType::i32);
  const Tensor data_sum = Tensor::empty({1}, DType::i32);
  sequence_sum.data<std::int32_t>()[0] = rank;
  data_sum.data<std::int32_t>()[0] = rank;
  groups.sequence->all_reduce(sequence_sum, ReduceOp::sum);
  groups.data->all_reduce(data_sum, ReduceOp::sum);
  EXPECT_EQ(sequence_sum.data<std::int32_t>()[0], rank < 2 ? 1 : 5);
  EXPECT_EQ(data_sum.data<std::int32_t>()[0], rank % 2 == 0 ? 2 : 4);
}

TEST_F(MpiCommunicatorTest, SplitRejectsAGridOfTheWrongSize) {
  const RankGrid grid({{"data", size + 1}, {"sequence", 1}});
  EXPECT_THROW(split_process_groups(world, grid), UserError);
}

TEST_F(MpiCommunicatorTest, BytesSentFollowsTheVolumeConvention) {
  MpiCommunicator fresh(MPI_COMM_WORLD, "fresh", kTestTimeout);
  EXPECT_EQ(fresh.bytes_sent(), 0);
  const Tensor buffer = Tensor::zeros({size * 10}, DType::f32);  // divisible by every size
  std::int64_t expected = 0;
  fresh.all_reduce(buffer, ReduceOp::sum);
  expected += 2 * (size - 1) * static_cast<std::int64_t>(buffer.bytes()) / size;
  EXPECT_EQ(fresh.bytes_sent(), expected);
  const Tensor gathered = Tensor::zeros({size * size * 10}, DType::f32);
  fresh.all_gather(buffer, gathered);
  expected += (size - 1) * static_cast<std::int64_t>(buffer.bytes());
  EXPECT_EQ(fresh.bytes_sent(), expected);
  fresh.broadcast(buffer, 0);
  expected += rank == 0 ? (size - 1) * static_cast<std::int64_t>(buffer.bytes()) : 0;
  EXPECT_EQ(fresh.bytes_sent(), expected);
  fresh.barrier();
  EXPECT_EQ(fresh.bytes_sent(), expected);
}

// MPI counts are ints: a buffer of more than INT_MAX elements is refused before MPI sees it.
// (The 2 GiB host allocation is never touched, so it costs address space only.)
TEST_F(MpiCommunicatorTest, CountsAboveIntMaxAreRejected) {
  const Tensor huge = Tensor::empty({std::int64_t{INT_MAX} + 1}, DType::u8);
  const std::string message = error_of([&] { (void)world.isend(huge, rank, 0); });
  EXPECT_EQ(message.rfind("[isend] 2147483648 elements exceed MPI's int count limit", 0), 0u)
      << message;
}

TEST(MpiCommunicatorSetup, TimeoutComesFromTheEnvironment) {
  ASSERT_EQ(setenv("LONGSEQ_COMM_TIMEOUT_S", "2.5", 1), 0);
  EXPECT_EQ(communication_timeout_from_environment(), 2500ms);
  ASSERT_EQ(setenv("LONGSEQ_COMM_TIMEOUT_S", "soon", 1), 0);
  EXPECT_THROW(communication_timeout_from_environment(), UserError);
  ASSERT_EQ(unsetenv("LONGSEQ_COMM_TIMEOUT_S"), 0);
  EXPECT_EQ(communication_timeout_from_environment(), kDefaultCommunicationTimeout);
  EXPECT_THROW(MpiCommunicator(MPI_COMM_WORLD, "zero", 0ms), UserError);
}

}  // namespace
}  // namespace longseq
