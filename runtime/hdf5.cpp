#include "runtime/hdf5.h"

#include <fmt/format.h>

#include <mutex>
#include <vector>

namespace longseq {

namespace {

herr_t collect_error_message(unsigned /*depth*/, const H5E_error2_t* entry, void* messages) {
  auto& out = *static_cast<std::vector<std::string>*>(messages);
  std::string text = fmt::format("{}: {}", entry->func_name ? entry->func_name : "?",
                                 entry->desc ? entry->desc : "");
  for (char& c : text) {
    if (c == '\n' || c == '\r') {
      c = ' ';
    }
  }
  if (out.empty() || out.back() != text) {
    out.push_back(std::move(text));
  }
  return 0;
}

herr_t close_id(hid_t id) {
  switch (H5Iget_type(id)) {
    case H5I_FILE:
      return H5Fclose(id);
    case H5I_GROUP:
      return H5Gclose(id);
    case H5I_DATASET:
      return H5Dclose(id);
    case H5I_ATTR:
      return H5Aclose(id);
    case H5I_DATASPACE:
      return H5Sclose(id);
    case H5I_DATATYPE:
      return H5Tclose(id);
    case H5I_GENPROP_LST:
      return H5Pclose(id);
    default:
      return H5Idec_ref(id);  // any other kind: dropping the last reference closes it
  }
}

}  // namespace

void silence_hdf5_error_printing() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

std::string take_hdf5_error_messages() {
  std::vector<std::string> messages;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_error_message, &messages);
  H5Eclear2(H5E_DEFAULT);
  std::string joined;
  for (const std::string& message : messages) {
    joined += joined.empty() ? message : "; " + message;
  }
  return joined;
}

std::string describe_hdf5_status(std::int64_t status) {
  const std::string messages = take_hdf5_error_messages();
  if (messages.empty()) {
    return fmt::format("status {}", status);
  }
  return fmt::format("status {} ({})", status, messages);
}

void Hdf5Id::close() {
  const hid_t id = std::exchange(id_, H5I_INVALID_HID);
  if (id >= 0) {
    HDF5_CHECK(close_id(id));
  }
}

Hdf5Id Hdf5Id::take(hid_t id, const char* call, const char* file, int line) {
  if (id < 0) {
    raise_call_failure(call, describe_hdf5_status(id), file, line);
  }
  return Hdf5Id(id);
}

void Hdf5Id::reset() noexcept {
  if (id_ >= 0) {
    close_id(id_);
    H5Eclear2(H5E_DEFAULT);
    id_ = H5I_INVALID_HID;
  }
}

}  // namespace longseq
