#include "suites/results/results_file.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "runtime/error.h"
#include "runtime/hdf5.h"
#include "suites/results/file_replace.h"
#include "suites/results/results_hdf5.h"

namespace longseq {

namespace {

enum class ResultsKind { empty, json_lines, hdf5 };

bool exists(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 || errno != ENOENT;
}

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::ifstream open_for_reading(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  LONGSEQ_REQUIRE(in.good(), "{}: cannot read: {}", path, std::strerror(errno));
  return in;
}

// What kind of results file the existing `path` is; UserError naming it when it is none.
ResultsKind classify(const std::string& path) {
  struct stat info {};
  LONGSEQ_REQUIRE(::stat(path.c_str(), &info) == 0, "{}: cannot read: {}", path,
                  std::strerror(errno));
  LONGSEQ_REQUIRE(!S_ISDIR(info.st_mode), "{}: is a folder, not a results file", path);
  LONGSEQ_REQUIRE(S_ISREG(info.st_mode), "{}: not a regular file", path);
  std::ifstream in = open_for_reading(path);
  char c = 0;
  while (in.get(c) && is_blank(c)) {
  }
  if (!in) {
    return ResultsKind::empty;
  }
  if (c == '{') {
    return ResultsKind::json_lines;
  }
  silence_hdf5_error_printing();
  const htri_t hdf5 = H5Fis_hdf5(path.c_str());
  if (hdf5 < 0) {
    throw UserError(fmt::format("{}: cannot read: {}", path, take_hdf5_error_messages()));
  }
  LONGSEQ_REQUIRE(hdf5 > 0,
                  "{}: not a longseq results file (neither HDF5 nor JSON lines of records)", path);
  return ResultsKind::hdf5;
}

// Calls `line_read(text, where)` for every non-blank line; stops early when it returns false.
template <typename LineRead>
void for_each_record_line(const std::string& path, LineRead line_read) {
  std::ifstream in = open_for_reading(path);
  std::string line;
  for (std::size_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) {
      continue;
    }
    if (!line_read(line, fmt::format("{}:{}", path, number))) {
      return;
    }
  }
  LONGSEQ_REQUIRE(in.eof(), "{}: read failed: {}", path, std::strerror(errno));
}

std::string csv_cell(const FieldValue& value) {
  if (const auto* real = std::get_if<double>(&value)) {
    return fmt::format("{}", *real);  // shortest text that reads back to the same double
  }
  std::string text = field_text(value);
  if (text.find_first_of(",\"\r\n") == std::string::npos) {
    return text;
  }
  std::string quoted = "\"";
  for (const char c : text) {
    quoted += c;
    if (c == '"') {
      quoted += '"';
    }
  }
  return quoted + "\"";
}

}  // namespace

std::vector<RunRecord> read_results(const std::string& path) {
  LONGSEQ_REQUIRE(exists(path), "{}: no such file", path);
  switch (classify(path)) {
    case ResultsKind::empty:
      return {};
    case ResultsKind::hdf5:
      return read_results_hdf5(path);
    case ResultsKind::json_lines:
      break;
  }
  std::vector<RunRecord> records;
  for_each_record_line(path, [&](const std::string& line, const std::string& where) {
    records.push_back(record_from_json(line, where));
    return true;
  });
  return records;
}

bool is_results_file(const std::string& path) {
  if (!exists(path)) {
    return false;
  }
  switch (classify(path)) {
    case ResultsKind::empty:
      return true;
    case ResultsKind::hdf5:
      check_results_hdf5(path);
      return true;
    case ResultsKind::json_lines:
      break;
  }
  for_each_record_line(path, [](const std::string& line, const std::string& where) {
    static_cast<void>(record_from_json(line, where));
    return false;  // the first record decides; read_results checks the rest
  });
  return true;
}

void write_results(const std::string& path, const std::vector<RunRecord>& records) {
  try {
    static_cast<void>(is_results_file(path));
  } catch (const UserError& e) {
    throw UserError(fmt::format("{}; refusing to replace it", e.what()));
  }
  replace_file(path, [&](const std::string& temporary) { write_results_hdf5(temporary, records); });
}

void export_json(const std::vector<RunRecord>& records, const std::string& path) {
  std::string text;
  for (const RunRecord& record : records) {
    text += record_to_json(record);
    text += '\n';
  }
  replace_file_text(path, text);
}

void export_csv(const std::vector<RunRecord>& records, const std::string& path) {
  std::vector<std::string> columns;
  for (const RunRecord& record : records) {
    for (const auto& [name, value] : record.fields()) {
      if (std::find(columns.begin(), columns.end(), name) == columns.end()) {
        columns.push_back(name);
      }
    }
  }
  std::string text;
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (i > 0) {
      text += ',';
    }
    text += csv_cell(columns[i]);
  }
  text += '\n';
  for (const RunRecord& record : records) {
    for (std::size_t i = 0; i < columns.size(); ++i) {
      if (i > 0) {
        text += ',';
      }
      if (const FieldValue* value = record.find(columns[i])) {
        text += csv_cell(*value);
      }
    }
    text += '\n';
  }
  replace_file_text(path, text);
}

}  // namespace longseq
