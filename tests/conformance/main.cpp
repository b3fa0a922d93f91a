// The main of the conformance tests: MPI lives for the whole run (each test makes its communicators
// from MPI_COMM_WORLD), rank 0 prints GoogleTest's report, the other ranks print only their own
// failures tagged with their rank, and every rank exits with the same status: failed if any rank
// failed, so that mpirun and CTest see one verdict.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>
#include <string>

#include "parallel/mpi_session.h"

namespace {

// The test's name is remembered at its start: GoogleTest calls OnTestPartResult while holding the
// lock that UnitTest::current_test_info() takes, so asking for it there would deadlock the rank.
class RankFailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}

  void OnTestStart(const ::testing::TestInfo& test) override {
    test_ = std::string(test.test_suite_name()) + "." + test.name();
  }

  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.failed()) {
      return;
    }
    std::fprintf(stderr, "[rank %d] %s failed at %s:%d\n%s\n", rank_, test_.c_str(),
                 result.file_name() != nullptr ? result.file_name() : "?", result.line_number(),
                 result.message());
  }

 private:
  int rank_;
  std::string test_ = "(outside a test)";
};

}  // namespace

int main(int argc, char** argv) {
  const longseq::MpiSession session(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  if (session.world_rank() != 0) {
    ::testing::TestEventListeners& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new RankFailurePrinter(session.world_rank()));
  }
  const int failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  int any_failed = failed;
  MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return any_failed;
}
