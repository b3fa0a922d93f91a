#include "parallel/mpi_session.h"

#include <mpi.h>

#include <cstdlib>

#include "parallel/mpi_check.h"

namespace longseq {

MpiSession::MpiSession(int* argc, char*** argv) {
  int finalized = 0;
  MPI_CHECK(MPI_Finalized(&finalized));
  LONGSEQ_CHECK(finalized == 0, "[mpi_session] MPI was already finalised; it cannot start again");
  int initialized = 0;
  MPI_CHECK(MPI_Initialized(&initialized));
  if (initialized != 0) {
    MPI_CHECK(MPI_Query_thread(&thread_level_));
  } else {
    MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &thread_level_));
    owns_mpi_ = true;
  }
  MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &world_rank_));
  MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &world_size_));
}

MpiSession::~MpiSession() {
  if (owns_mpi_) {
    MPI_Finalize();  // nothing can be reported from a destructor; the process is ending anyway
  }
}

bool MpiSession::thread_multiple() const { return thread_level_ == MPI_THREAD_MULTIPLE; }

std::string MpiSession::thread_level_name() const {
  switch (thread_level_) {
    case MPI_THREAD_SINGLE:
      return "MPI_THREAD_SINGLE";
    case MPI_THREAD_FUNNELED:
      return "MPI_THREAD_FUNNELED";
    case MPI_THREAD_SERIALIZED:
      return "MPI_THREAD_SERIALIZED";
    case MPI_THREAD_MULTIPLE:
      return "MPI_THREAD_MULTIPLE";
    default:
      return fmt::format("thread level {}", thread_level_);
  }
}

std::string MpiSession::library_version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int length = 0;
  MPI_CHECK(MPI_Get_library_version(text, &length));
  std::string version(text, static_cast<std::size_t>(length));
  // Open MPI ends its description with a newline (and counts the terminator).
  while (!version.empty() && (version.back() == '\n' || version.back() == '\0')) {
    version.pop_back();
  }
  return version;
}

void MpiSession::abort_job(int code) const {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);  // MPI_Abort does not return; this line only tells the compiler so
}

}  // namespace longseq
