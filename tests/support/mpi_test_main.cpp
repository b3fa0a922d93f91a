// The main of every multi-rank test binary: owns MPI for the whole run (tests make their own
// communicators from MPI_COMM_WORLD), lets only rank 0 print GoogleTest's report (other ranks
// print just their failures, prefixed with their rank), and exits with the same status on every
// rank: failed if any rank failed, so that mpirun and CTest see one verdict.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>
#include <string>

#include "parallel/mpi_session.h"

namespace {

// Stands in for the default printer on ranks other than 0: silent, except for failures.
class FailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit FailurePrinter(int rank) : rank_(rank) {}

  // The name is recorded here: asking GoogleTest for the current test from inside
  // OnTestPartResult would take a lock it already holds, and the rank would hang.
  void OnTestStart(const ::testing::TestInfo& test) override {
    test_name_ = std::string(test.test_suite_name()) + "." + test.name();
  }

  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.failed()) {
      return;
    }
    std::fprintf(stderr, "[rank %d] %s failed at %s:%d\n%s\n", rank_, test_name_.c_str(),
                 result.file_name() != nullptr ? result.file_name() : "?", result.line_number(),
                 result.message());
  }

 private:
  int rank_;
  std::string test_name_ = "?";
};

}  // namespace

int main(int argc, char** argv) {
  const longseq::MpiSession session(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  if (session.world_rank() != 0) {
    ::testing::TestEventListeners& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new FailurePrinter(session.world_rank()));
  }
  const int failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  int any_failed = failed;
  MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return any_failed;
}
