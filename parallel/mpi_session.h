// The MPI environment of one process: initialises MPI (asking for MPI_THREAD_MULTIPLE, so that a
// communication thread may drive progress while compute threads call MPI) and finalises it when the
// session ends. When MPI is already initialised (by a host program or another library) the session
// only observes it and leaves finalisation to whoever initialised it.
//
// Communicators (MpiCommunicator) must be destroyed before the session that they were created in.
#pragma once

#include <string>

namespace longseq {

class MpiSession {
 public:
  // argc/argv may be null; Open MPI reads nothing from them.
  MpiSession(int* argc = nullptr, char*** argv = nullptr);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  [[nodiscard]] int world_rank() const { return world_rank_; }
  [[nodiscard]] int world_size() const { return world_size_; }
  // The thread support MPI provided (MPI_THREAD_SINGLE ... MPI_THREAD_MULTIPLE).
  [[nodiscard]] int thread_level() const { return thread_level_; }
  [[nodiscard]] bool thread_multiple() const;
  // "MPI_THREAD_MULTIPLE", ..., for `longseq info` and logs.
  [[nodiscard]] std::string thread_level_name() const;
  // The library's own description, e.g. "Open MPI v4.1.4, ...".
  [[nodiscard]] static std::string library_version();
  // Ends every process of the job with `code` (MPI_Abort on the world): for a failure that other
  // ranks, waiting in a collective, could never learn of.
  [[noreturn]] void abort_job(int code) const;

 private:
  bool owns_mpi_ = false;
  int world_rank_ = 0;
  int world_size_ = 1;
  int thread_level_ = 0;
};

}  // namespace longseq
