// Reading a YAML spec field by field, with errors of one line that name the file, the 1-based
// line and column of the offending node, and its dotted key path:
//
//   configs/suites/ci.yaml:7:12: matrix.seq[2]: expected an integer, got the string '4096'
//
// A Field is a node together with its path and the position to report. Everything that reads a
// spec (suites, and later training specs) goes through these helpers, so that no value is read
// with yaml-cpp's as<T>() and its mark-less "bad conversion".
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace longseq {

struct Field {
  YAML::Node node;
  std::string key;  // dotted path, e.g. "include[1].mixer"; empty for the document
  YAML::Mark mark;  // where errors point: the value, or its key where the value is empty
};

class SpecReader {
 public:
  explicit SpecReader(std::string file) : file_(std::move(file)) {}

  [[nodiscard]] const std::string& file() const { return file_; }

  // Parses the file: one document, which must be a non-empty map. Malformed YAML becomes
  // "FILE:LINE:COL: <parser message>".
  [[nodiscard]] Field load_document() const;

  // Throws UserError "FILE:LINE:COL: KEY: what" (the key part left out where `key` is empty).
  [[noreturn]] void fail(const YAML::Mark& mark, std::string_view key, std::string_view what) const;
  [[noreturn]] void fail(const Field& field, std::string_view what) const {
    fail(field.mark, field.key, what);
  }

  // The entries of a map, in the order written. Requires a map; rejects duplicate keys, keys
  // that are not plain strings, and keys not in `allowed` (the message lists them). `what` names
  // the map in messages ("the suite", "an axis entry").
  [[nodiscard]] std::vector<std::pair<std::string, Field>> map_entries(
      const Field& map, const std::vector<std::string>& allowed, std::string_view what) const;
  // The items of a non-empty list.
  [[nodiscard]] std::vector<Field> list_items(const Field& list) const;

  // Scalars. Integers and numbers are plain (unquoted) scalars; booleans are true or false.
  [[nodiscard]] std::string as_string(const Field& field) const;
  [[nodiscard]] std::int64_t as_integer(const Field& field, std::int64_t min,
                                        std::int64_t max) const;
  [[nodiscard]] double as_number(const Field& field, double min, double max) const;
  [[nodiscard]] bool as_bool(const Field& field) const;
  // A size in bytes: a plain integer, or a number with a unit B, KiB, MiB, GiB or TiB ("4GiB",
  // "1.5 MiB"); must be positive and at most `max`.
  [[nodiscard]] std::int64_t as_bytes(const Field& field, std::int64_t max) const;

  // Requires a scalar (not a list, map or empty value); `expected` names what was wanted.
  void require_scalar(const Field& field, std::string_view expected) const;

 private:
  std::string file_;
};

// "a list", "a map", "nothing", "the string 'x'" or "'x'": what a node holds, for messages.
std::string describe_node(const YAML::Node& node);

// The child of `parent` at `key` / `index`, with its path and the position to report.
Field child_field(const Field& parent, const YAML::Node& key_node, const YAML::Node& value,
                  std::string_view key);
Field item_field(const Field& parent, const YAML::Node& item, std::size_t index);

}  // namespace longseq
