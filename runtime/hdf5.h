// HDF5 members of the error-check family (runtime/error.h) and an RAII owner of HDF5 identifiers.
//
//   HDF5_CHECK(H5Awrite(attribute.get(), H5T_NATIVE_DOUBLE, &value));   // herr_t / htri_t
//   Hdf5Id file = HDF5_ID(H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT));   // hid_t to own
//
// HDF5 reports failure as a negative herr_t, htri_t or hid_t. A failing check throws Error with the
// call text, the messages of HDF5's error stack, file:line, rank and host. HDF5 would also print
// its error stack to stderr on every failure; longseq turns that off for the process (the messages
// go into the exception text instead): HDF5_ID does so before its call, and code whose first HDF5
// call is not an HDF5_ID calls silence_hdf5_error_printing() first.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <utility>

#include "runtime/error.h"

namespace longseq {

// Turns off HDF5's automatic printing of its error stack for this process. Idempotent and cheap.
void silence_hdf5_error_printing();

// The messages on HDF5's error stack of this thread, outermost call first, on one line ("" when
// the stack is empty); clears the stack.
std::string take_hdf5_error_messages();

// What HDF5_CHECK reports for a failing status: the status and the error stack's messages.
std::string describe_hdf5_status(std::int64_t status);

// The "success" of HDF5_CHECK: every non-negative status.
struct Hdf5Success {
  friend bool operator==(std::int64_t status, Hdf5Success) { return status >= 0; }
};

// Owns one HDF5 identifier (file, group, dataset, attribute, dataspace, datatype, property list)
// and closes it with the close function of its kind. Movable, not copyable. Never give it a
// predefined identifier such as H5T_NATIVE_INT64 or H5P_DEFAULT.
class Hdf5Id {
 public:
  Hdf5Id() = default;
  explicit Hdf5Id(hid_t id) : id_(id) {}
  ~Hdf5Id() { reset(); }
  Hdf5Id(const Hdf5Id&) = delete;
  Hdf5Id& operator=(const Hdf5Id&) = delete;
  Hdf5Id(Hdf5Id&& other) noexcept : id_(std::exchange(other.id_, H5I_INVALID_HID)) {}
  Hdf5Id& operator=(Hdf5Id&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = std::exchange(other.id_, H5I_INVALID_HID);
    }
    return *this;
  }
  [[nodiscard]] hid_t get() const { return id_; }
  [[nodiscard]] bool valid() const { return id_ >= 0; }

  // Closes now and checks the result (a file's close flushes it: its failure matters).
  void close();

  // What HDF5_ID expands to: owns `id`, or throws Error as HDF5_CHECK does when it is negative.
  static Hdf5Id take(hid_t id, const char* call, const char* file, int line);

 private:
  void reset() noexcept;  // closes, ignoring failure: a destructor cannot report it
  hid_t id_ = H5I_INVALID_HID;
};

}  // namespace longseq

#define HDF5_CHECK(call) \
  LONGSEQ_CHECK_STATUS_TEXT(call, #call, ::longseq::Hdf5Success{}, ::longseq::describe_hdf5_status)

#define HDF5_ID(call)                                                                      \
  ::longseq::Hdf5Id::take(((void)::longseq::silence_hdf5_error_printing(), (call)), #call, \
                          __FILE__, __LINE__)
