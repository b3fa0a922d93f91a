// The MPI member of the error-check family (runtime/error.h). Communicators that should report
// failures through MPI_CHECK must carry the MPI_ERRORS_RETURN handler: with MPI's default
// (MPI_ERRORS_ARE_FATAL) a failing call aborts the job before any check sees its status.
#pragma once

#include <mpi.h>

#include <string>

#include "runtime/error.h"

namespace longseq {

inline std::string describe_mpi_status(int status) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  if (MPI_Error_string(status, text, &length) != MPI_SUCCESS) {
    return fmt::format("MPI error {}", status);
  }
  return fmt::format("{} ({})", std::string(text, static_cast<std::size_t>(length)), status);
}

}  // namespace longseq

#define MPI_CHECK(call) \
  LONGSEQ_CHECK_STATUS_TEXT(call, #call, MPI_SUCCESS, ::longseq::describe_mpi_status)
