// The NCCL member of the error-check family (runtime/error.h).
#pragma once

#include <nccl.h>

#include <string>

#include "runtime/error.h"

namespace longseq {

inline std::string describe_nccl_status(ncclResult_t status) {
  return LONGSEQ_FORMAT("{} ({})", ncclGetErrorString(status), static_cast<int>(status));
}

}  // namespace longseq

#define NCCL_CHECK(call) \
  LONGSEQ_CHECK_STATUS_TEXT(call, #call, ncclSuccess, ::longseq::describe_nccl_status)
