#include "suites/results/results_hdf5.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "runtime/error.h"
#include "runtime/hdf5.h"
#include "suites/results/results_file.h"

namespace longseq {

namespace {

constexpr const char* kRunsGroup = "runs";

// File access: file locking that tolerates file systems without it; files are written in the 1.8
// format (dense attribute storage with creation order, readable by every HDF5 from 1.8 on).
Hdf5Id file_access(bool writing) {
  Hdf5Id fapl = HDF5_ID(H5Pcreate(H5P_FILE_ACCESS));
  HDF5_CHECK(H5Pset_file_locking(fapl.get(), true, true));
  if (writing) {
    HDF5_CHECK(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_V18));
  }
  return fapl;
}

herr_t count_attribute(hid_t /*owner*/, const char* /*name*/, const H5A_info_t* /*info*/,
                       void* count) {
  ++*static_cast<hsize_t*>(count);
  return 0;
}

Hdf5Id scalar_space() { return HDF5_ID(H5Screate(H5S_SCALAR)); }

// A fixed-length, NUL-terminated UTF-8 string type that holds `length` bytes.
Hdf5Id string_type(std::size_t length) {
  Hdf5Id type = HDF5_ID(H5Tcopy(H5T_C_S1));
  HDF5_CHECK(H5Tset_size(type.get(), length + 1));
  HDF5_CHECK(H5Tset_strpad(type.get(), H5T_STR_NULLTERM));
  HDF5_CHECK(H5Tset_cset(type.get(), H5T_CSET_UTF8));
  return type;
}

void write_attribute(hid_t owner, const std::string& name, const FieldValue& value) {
  const Hdf5Id space = scalar_space();
  if (const auto* integer = std::get_if<std::int64_t>(&value)) {
    const Hdf5Id attribute = HDF5_ID(
        H5Acreate2(owner, name.c_str(), H5T_NATIVE_INT64, space.get(), H5P_DEFAULT, H5P_DEFAULT));
    HDF5_CHECK(H5Awrite(attribute.get(), H5T_NATIVE_INT64, integer));
  } else if (const auto* real = std::get_if<double>(&value)) {
    const Hdf5Id attribute = HDF5_ID(
        H5Acreate2(owner, name.c_str(), H5T_NATIVE_DOUBLE, space.get(), H5P_DEFAULT, H5P_DEFAULT));
    HDF5_CHECK(H5Awrite(attribute.get(), H5T_NATIVE_DOUBLE, real));
  } else {
    const std::string& text = std::get<std::string>(value);
    const Hdf5Id type = string_type(text.size());
    const Hdf5Id attribute =
        HDF5_ID(H5Acreate2(owner, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT));
    HDF5_CHECK(H5Awrite(attribute.get(), type.get(), text.c_str()));
  }
}

std::string attribute_name(hid_t attribute) {
  const ssize_t length = H5Aget_name(attribute, 0, nullptr);
  HDF5_CHECK(length);
  std::string name(static_cast<std::size_t>(length) + 1, '\0');
  HDF5_CHECK(H5Aget_name(attribute, name.size(), name.data()));
  name.resize(static_cast<std::size_t>(length));
  return name;
}

std::string read_string(hid_t attribute, hid_t type) {
  const htri_t variable = H5Tis_variable_str(type);
  HDF5_CHECK(variable);
  if (variable > 0) {
    const Hdf5Id memory_type = HDF5_ID(H5Tcopy(H5T_C_S1));
    HDF5_CHECK(H5Tset_size(memory_type.get(), H5T_VARIABLE));
    HDF5_CHECK(H5Tset_cset(memory_type.get(), H5Tget_cset(type)));
    char* data = nullptr;
    HDF5_CHECK(H5Aread(attribute, memory_type.get(), &data));
    std::string text = data != nullptr ? std::string(data) : std::string();
    H5free_memory(data);
    return text;
  }
  const std::size_t size = H5Tget_size(type);
  LONGSEQ_CHECK(size > 0, "[results] string attribute of size 0");
  std::string buffer(size, '\0');
  HDF5_CHECK(H5Aread(attribute, type, buffer.data()));
  if (H5Tget_strpad(type) == H5T_STR_SPACEPAD) {
    buffer.erase(buffer.find_last_not_of(' ') + 1);
  } else {
    buffer.resize(std::min(buffer.find('\0'), buffer.size()));
  }
  return buffer;
}

// One scalar attribute as a field value; anything else is a UserError naming `where`.
FieldValue read_attribute(hid_t attribute, const std::string& where) {
  const Hdf5Id space = HDF5_ID(H5Aget_space(attribute));
  const hssize_t points = H5Sget_simple_extent_npoints(space.get());
  HDF5_CHECK(points);
  LONGSEQ_REQUIRE(points == 1, "{}: not a scalar ({} values)", where, points);
  const Hdf5Id type = HDF5_ID(H5Aget_type(attribute));
  switch (H5Tget_class(type.get())) {
    case H5T_INTEGER: {
      std::int64_t value = 0;
      HDF5_CHECK(H5Aread(attribute, H5T_NATIVE_INT64, &value));
      return value;
    }
    case H5T_FLOAT: {
      double value = 0;
      HDF5_CHECK(H5Aread(attribute, H5T_NATIVE_DOUBLE, &value));
      return value;
    }
    case H5T_STRING:
      return read_string(attribute, type.get());
    default:
      throw UserError(fmt::format("{}: neither an integer, a number nor a string", where));
  }
}

std::string read_text_attribute(hid_t owner, const char* name, const std::string& where) {
  const Hdf5Id attribute = HDF5_ID(H5Aopen(owner, name, H5P_DEFAULT));
  const FieldValue value = read_attribute(attribute.get(), where);
  LONGSEQ_REQUIRE(std::holds_alternative<std::string>(value), "{}: not a string", where);
  return std::get<std::string>(value);
}

Hdf5Id open_results(const std::string& path) {
  const Hdf5Id fapl = file_access(false);
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get());
  if (file < 0) {
    throw UserError(fmt::format("{}: cannot open as HDF5 ({})", path, take_hdf5_error_messages()));
  }
  Hdf5Id owned(file);
  const htri_t has_format = H5Aexists(owned.get(), "format");
  HDF5_CHECK(has_format);
  LONGSEQ_REQUIRE(has_format > 0,
                  "{}: not a longseq results file (an HDF5 file without the format attribute)",
                  path);
  const std::string format =
      read_text_attribute(owned.get(), "format", path + ": attribute format");
  LONGSEQ_REQUIRE(format == kResultsFormat, "{}: results format '{}' is not the supported '{}'",
                  path, format, kResultsFormat);
  return owned;
}

// The record groups' names in record order ("000000", "000001", ...: numeric order).
std::vector<std::string> record_names(hid_t runs, const std::string& path) {
  H5G_info_t info{};
  HDF5_CHECK(H5Gget_info(runs, &info));
  std::vector<std::pair<std::uint64_t, std::string>> names;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const ssize_t length =
        H5Lget_name_by_idx(runs, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    HDF5_CHECK(length);
    std::string name(static_cast<std::size_t>(length) + 1, '\0');
    HDF5_CHECK(H5Lget_name_by_idx(runs, ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(),
                                  name.size(), H5P_DEFAULT));
    name.resize(static_cast<std::size_t>(length));
    LONGSEQ_REQUIRE(!name.empty() && name.find_first_not_of("0123456789") == std::string::npos,
                    "{}: /{}/{} is not a record (record groups are numbered)", path, kRunsGroup,
                    name);
    names.emplace_back(std::strtoull(name.c_str(), nullptr, 10), name);
  }
  std::sort(names.begin(), names.end());
  std::vector<std::string> ordered;
  ordered.reserve(names.size());
  for (auto& [number, name] : names) {
    ordered.push_back(std::move(name));
  }
  return ordered;
}

RunRecord read_record(hid_t group, const std::string& where) {
  // Fields in the order they were written where the file tracks it (longseq's files do), else by
  // name.
  const Hdf5Id plist = HDF5_ID(H5Gget_create_plist(group));
  unsigned order_flags = 0;
  HDF5_CHECK(H5Pget_attr_creation_order(plist.get(), &order_flags));
  const H5_index_t index =
      (order_flags & H5P_CRT_ORDER_INDEXED) != 0 ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
  hsize_t count = 0;
  HDF5_CHECK(H5Aiterate2(group, H5_INDEX_NAME, H5_ITER_NATIVE, nullptr, count_attribute, &count));
  RunRecord record;
  for (hsize_t i = 0; i < count; ++i) {
    const Hdf5Id attribute =
        HDF5_ID(H5Aopen_by_idx(group, ".", index, H5_ITER_INC, i, H5P_DEFAULT, H5P_DEFAULT));
    const std::string name = attribute_name(attribute.get());
    record.set(name, read_attribute(attribute.get(), fmt::format("{} attribute {}", where, name)));
  }
  return record;
}

// Runs `read`, turning an internal HDF5 failure into a UserError naming the path (a damaged file
// is bad input, not a bug).
template <typename Read>
auto naming_path(const std::string& path, Read read) {
  silence_hdf5_error_printing();
  try {
    return read();
  } catch (const Error& e) {
    throw UserError(fmt::format("{}: damaged results file: {}", path, e.what()));
  }
}

}  // namespace

void check_results_hdf5(const std::string& path) {
  naming_path(path, [&] { return open_results(path); });
}

std::vector<RunRecord> read_results_hdf5(const std::string& path) {
  return naming_path(path, [&] {
    const Hdf5Id file = open_results(path);
    const htri_t has_runs = H5Lexists(file.get(), kRunsGroup, H5P_DEFAULT);
    HDF5_CHECK(has_runs);
    LONGSEQ_REQUIRE(has_runs > 0, "{}: results file without its /{} group", path, kRunsGroup);
    const Hdf5Id runs = HDF5_ID(H5Gopen2(file.get(), kRunsGroup, H5P_DEFAULT));
    std::vector<RunRecord> records;
    for (const std::string& name : record_names(runs.get(), path)) {
      const Hdf5Id group = HDF5_ID(H5Gopen2(runs.get(), name.c_str(), H5P_DEFAULT));
      records.push_back(
          read_record(group.get(), fmt::format("{}: /{}/{}", path, kRunsGroup, name)));
    }
    return records;
  });
}

void write_results_hdf5(const std::string& path, const std::vector<RunRecord>& records) {
  const Hdf5Id fapl = file_access(true);
  Hdf5Id file = HDF5_ID(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()));
  write_attribute(file.get(), "format", std::string(kResultsFormat));
  {
    const Hdf5Id runs =
        HDF5_ID(H5Gcreate2(file.get(), kRunsGroup, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    const Hdf5Id record_group = HDF5_ID(H5Pcreate(H5P_GROUP_CREATE));
    HDF5_CHECK(H5Pset_attr_creation_order(record_group.get(),
                                          H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED));
    for (std::size_t i = 0; i < records.size(); ++i) {
      const std::string name = fmt::format("{:06d}", i);
      const Hdf5Id group = HDF5_ID(
          H5Gcreate2(runs.get(), name.c_str(), H5P_DEFAULT, record_group.get(), H5P_DEFAULT));
      for (const auto& [field, value] : records[i].fields()) {
        write_attribute(group.get(), field, value);
      }
    }
  }
  file.close();
}

}  // namespace longseq
