// The one error-check family of longseq.
//
// Two kinds of failure:
//   UserError  - bad input from the user (flags, YAML, data files): the program prints one line
//                and exits with code 2.
//   Error      - an internal failure (a failing library call, a broken invariant): exit code 1.
// Every check macro is built from LONGSEQ_CHECK_STATUS, which records the call text, file:line,
// the rank (read from the launcher's environment) and the host.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

// fmt's compile-time format-string checks do not compile under nvcc: CUDA sources format at run
// time, C++ sources keep the checks.
#if defined(__CUDACC__)
#define LONGSEQ_FORMAT(format_string, ...) \
  ::fmt::format(::fmt::runtime(format_string) __VA_OPT__(, ) __VA_ARGS__)
#else
#define LONGSEQ_FORMAT(...) ::fmt::format(__VA_ARGS__)
#endif

namespace longseq {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class UserError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// "rank 3 on host-a", from the MPI / Slurm launcher environment; "rank 0 on host-a" when run alone.
std::string process_location();

[[noreturn]] void raise_check_failure(const char* condition, const char* file, int line,
                                      const std::string& message);
[[noreturn]] void raise_call_failure(const char* call, const std::string& status, const char* file,
                                     int line);

}  // namespace longseq

// Internal invariant: throws longseq::Error naming the condition, file:line, rank and host.
#define LONGSEQ_CHECK(condition, ...)                                                              \
  do {                                                                                             \
    if (!(condition)) {                                                                            \
      ::longseq::raise_check_failure(#condition, __FILE__, __LINE__, LONGSEQ_FORMAT(__VA_ARGS__)); \
    }                                                                                              \
  } while (0)

// Bad user input: throws longseq::UserError with exactly the given message.
#define LONGSEQ_REQUIRE(condition, ...)                        \
  do {                                                         \
    if (!(condition)) {                                        \
      throw ::longseq::UserError(LONGSEQ_FORMAT(__VA_ARGS__)); \
    }                                                          \
  } while (0)

// Generic library-call check: `call` returns a status; anything other than `ok` is an Error whose
// message holds `text` (the call as written) and `describe(status)`. A family macro passes #call
// itself: stringified one macro level down, the text would show the call after expansion
// (MPI_COMM_WORLD, H5P_DEFAULT as their definitions).
#define LONGSEQ_CHECK_STATUS_TEXT(call, text, ok, describe)                               \
  do {                                                                                    \
    auto longseq_status_ = (call);                                                        \
    if (longseq_status_ != (ok)) {                                                        \
      ::longseq::raise_call_failure(text, describe(longseq_status_), __FILE__, __LINE__); \
    }                                                                                     \
  } while (0)
#define LONGSEQ_CHECK_STATUS(call, ok, describe) \
  LONGSEQ_CHECK_STATUS_TEXT(call, #call, ok, describe)
