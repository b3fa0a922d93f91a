#include "suites/spec/spec_reader.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "runtime/error.h"

namespace longseq {

namespace {

// yaml-cpp marks are 0-based and null (-1) where there is no node (an empty document).
int one_based(int position) { return position >= 0 ? position + 1 : 1; }

bool is_plain(const YAML::Node& node) { return node.Tag() == "?"; }

// The first line (1-based) at or before `last_line` whose indentation holds a tab, or 0.
int line_with_tab_indentation(const std::string& text, int last_line) {
  std::istringstream lines(text);
  std::string line;
  for (int number = 1; number <= last_line && std::getline(lines, line); ++number) {
    const std::size_t indent_end = line.find_first_not_of(" \t");
    const std::size_t tab = line.find('\t');
    if (tab != std::string::npos && (indent_end == std::string::npos || tab < indent_end)) {
      return number;
    }
  }
  return 0;
}

std::string read_text(const std::string& file) {
  std::ifstream stream(file, std::ios::binary);
  if (!stream) {
    const int error = errno;
    throw UserError(fmt::format("{}: cannot open the file ({})", file,
                                error != 0 ? std::strerror(error) : "unreadable"));
  }
  std::ostringstream text;
  text << stream.rdbuf();
  if (stream.bad()) {
    throw UserError(fmt::format("{}: cannot read the file", file));
  }
  return text.str();
}

// "12" or "-3" only: digits with an optional sign.
bool parse_integer_text(const std::string& text, std::int64_t& value, bool& overflow) {
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  if (begin != end && *begin == '+') {
    ++begin;
  }
  if (begin == end) {
    return false;
  }
  const std::from_chars_result result = std::from_chars(begin, end, value);
  overflow = result.ec == std::errc::result_out_of_range;
  return result.ptr == end && (result.ec == std::errc() || overflow);
}

// Levenshtein distance, for suggesting the key that was probably meant.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// "; did you mean 'x'?" for the closest allowed key within a third of its length (or one that
// starts with `key`), else "".
std::string suggestion(const std::string& key, const std::vector<std::string>& allowed) {
  const std::string* best = nullptr;
  std::size_t best_distance = 0;
  for (const std::string& name : allowed) {
    const std::size_t distance = edit_distance(key, name);
    const bool prefix = key.size() >= 3 && name.rfind(key, 0) == 0;
    if ((prefix || distance <= std::max<std::size_t>(1, name.size() / 3)) &&
        (best == nullptr || distance < best_distance)) {
      best = &name;
      best_distance = distance;
    }
  }
  return best != nullptr ? fmt::format("; did you mean '{}'?", *best) : "";
}

bool parse_number_text(const std::string& text, double& value) {
  if (text.empty() || text.find_first_of(" \t") != std::string::npos) {
    return false;
  }
  char* end = nullptr;
  errno = 0;
  value = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size() && errno == 0 && std::isfinite(value);
}

}  // namespace

std::string describe_node(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return "nothing";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Scalar:
      break;
  }
  return is_plain(node) ? fmt::format("'{}'", node.Scalar())
                        : fmt::format("the string '{}'", node.Scalar());
}

Field child_field(const Field& parent, const YAML::Node& key_node, const YAML::Node& value,
                  std::string_view key) {
  Field field;
  field.node = value;
  field.key = parent.key.empty() ? std::string(key) : fmt::format("{}.{}", parent.key, key);
  // An empty value has no position of its own (yaml-cpp gives the next token's): point at its key.
  field.mark = value.IsNull() ? key_node.Mark() : value.Mark();
  return field;
}

Field item_field(const Field& parent, const YAML::Node& item, std::size_t index) {
  Field field;
  field.node = item;
  field.key = fmt::format("{}[{}]", parent.key, index);
  field.mark = item.IsNull() ? parent.mark : item.Mark();
  return field;
}

Field SpecReader::load_document() const {
  const std::string text = read_text(file_);
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(text);
  } catch (const YAML::ParserException& error) {
    const int line = one_based(error.mark.line);
    std::string what = error.msg;
    if (const int tab_line = line_with_tab_indentation(text, line); tab_line > 0) {
      what += fmt::format(" (line {} is indented with a tab; YAML indents with spaces)", tab_line);
    }
    throw UserError(fmt::format("{}:{}:{}: {}", file_, line, one_based(error.mark.column), what));
  } catch (const YAML::Exception& error) {
    throw UserError(fmt::format("{}:{}:{}: {}", file_, one_based(error.mark.line),
                                one_based(error.mark.column), error.msg));
  }
  if (documents.size() > 1) {
    fail(documents[1].Mark(), "", "a spec file holds one YAML document; a second one starts here");
  }
  Field document;
  if (!documents.empty()) {
    document.node = documents[0];
    document.mark = documents[0].Mark();
  }
  return document;
}

void SpecReader::fail(const YAML::Mark& mark, std::string_view key, std::string_view what) const {
  const int line = mark.is_null() ? 1 : one_based(mark.line);
  const int column = mark.is_null() ? 1 : one_based(mark.column);
  if (key.empty()) {
    throw UserError(fmt::format("{}:{}:{}: {}", file_, line, column, what));
  }
  throw UserError(fmt::format("{}:{}:{}: {}: {}", file_, line, column, key, what));
}

std::vector<std::pair<std::string, Field>> SpecReader::map_entries(
    const Field& map, const std::vector<std::string>& allowed, std::string_view what) const {
  if (!map.node.IsMap()) {
    fail(map, fmt::format("{} must be a map of keys, got {}", what, describe_node(map.node)));
  }
  std::vector<std::pair<std::string, Field>> entries;
  std::map<std::string, int> first_line;
  for (const auto& entry : map.node) {
    const YAML::Node& key_node = entry.first;
    if (!key_node.IsScalar()) {
      fail(key_node.Mark(), map.key,
           fmt::format("keys of {} must be plain names, got {}", what, describe_node(key_node)));
    }
    const std::string key = key_node.Scalar();
    Field field = child_field(map, key_node, entry.second, key);
    const auto [previous, inserted] = first_line.emplace(key, one_based(key_node.Mark().line));
    if (!inserted) {
      fail(key_node.Mark(), field.key,
           fmt::format("duplicate key (first given on line {})", previous->second));
    }
    bool known = false;
    for (const std::string& name : allowed) {
      known = known || name == key;
    }
    if (!known) {
      fail(key_node.Mark(), field.key,
           fmt::format("unknown key in {}{} (allowed: {})", what, suggestion(key, allowed),
                       fmt::join(allowed, ", ")));
    }
    entries.emplace_back(key, std::move(field));
  }
  return entries;
}

std::vector<Field> SpecReader::list_items(const Field& list) const {
  if (!list.node.IsSequence()) {
    fail(list, fmt::format("expected a list, got {}", describe_node(list.node)));
  }
  if (list.node.size() == 0) {
    fail(list, "empty list (give at least one value)");
  }
  std::vector<Field> items;
  std::size_t index = 0;
  for (const YAML::Node& item : list.node) {
    items.push_back(item_field(list, item, index++));
  }
  return items;
}

void SpecReader::require_scalar(const Field& field, std::string_view expected) const {
  if (!field.node.IsScalar()) {
    fail(field, fmt::format("expected {}, got {}", expected, describe_node(field.node)));
  }
}

std::string SpecReader::as_string(const Field& field) const {
  require_scalar(field, "a string");
  return field.node.Scalar();
}

std::int64_t SpecReader::as_integer(const Field& field, std::int64_t min, std::int64_t max) const {
  require_scalar(field, "an integer");
  const std::string& text = field.node.Scalar();
  std::int64_t value = 0;
  bool overflow = false;
  if (!is_plain(field.node) || !parse_integer_text(text, value, overflow)) {
    fail(field, fmt::format("expected an integer, got {}", describe_node(field.node)));
  }
  if (overflow || value > max) {
    fail(field, fmt::format("{} is absurdly large (at most {})", text, max));
  }
  if (value < min) {
    if (min == 1) {
      fail(field, fmt::format("must be positive, got {}", value));
    }
    if (min == 0) {
      fail(field, fmt::format("must not be negative, got {}", value));
    }
    fail(field, fmt::format("must be at least {}, got {}", min, value));
  }
  return value;
}

double SpecReader::as_number(const Field& field, double min, double max) const {
  require_scalar(field, "a number");
  double value = 0;
  if (!is_plain(field.node) || !parse_number_text(field.node.Scalar(), value)) {
    fail(field, fmt::format("expected a number, got {}", describe_node(field.node)));
  }
  if (value < min) {
    fail(field, min == 0 ? fmt::format("must not be negative, got {}", field.node.Scalar())
                         : fmt::format("must be at least {}, got {}", min, field.node.Scalar()));
  }
  if (value > max) {
    fail(field, fmt::format("{} is absurdly large (at most {})", field.node.Scalar(), max));
  }
  return value;
}

bool SpecReader::as_bool(const Field& field) const {
  require_scalar(field, "true or false");
  const std::string& text = field.node.Scalar();
  if (is_plain(field.node)) {
    if (text == "true" || text == "True" || text == "TRUE") {
      return true;
    }
    if (text == "false" || text == "False" || text == "FALSE") {
      return false;
    }
  }
  fail(field, fmt::format("expected true or false, got {}", describe_node(field.node)));
}

std::int64_t SpecReader::as_bytes(const Field& field, std::int64_t max) const {
  constexpr std::string_view kExpected =
      "a size in bytes: an integer, or a number with a unit B, KiB, MiB, GiB or TiB (e.g. 4GiB)";
  require_scalar(field, kExpected);
  const std::string& text = field.node.Scalar();
  const std::size_t unit_begin = text.find_first_not_of("0123456789.+-eE");
  const std::string number_text = text.substr(0, unit_begin);
  std::string unit = unit_begin == std::string::npos ? "" : text.substr(unit_begin);
  unit.erase(0, unit.find_first_not_of(' '));
  double number = 0;
  if (!parse_number_text(number_text, number)) {
    fail(field, fmt::format("expected {}, got {}", kExpected, describe_node(field.node)));
  }
  double scale = 1;
  if (unit.empty() || unit == "B") {
    scale = 1;
  } else if (unit == "KiB") {
    scale = 1024.0;
  } else if (unit == "MiB") {
    scale = 1024.0 * 1024.0;
  } else if (unit == "GiB") {
    scale = 1024.0 * 1024.0 * 1024.0;
  } else if (unit == "TiB") {
    scale = 1024.0 * 1024.0 * 1024.0 * 1024.0;
  } else {
    fail(field,
         fmt::format("unknown unit '{}' in '{}' (expected B, KiB, MiB, GiB or TiB)", unit, text));
  }
  const double bytes = std::floor(number * scale);
  if (bytes <= 0) {
    fail(field, fmt::format("must be positive, got {}", text));
  }
  if (bytes > static_cast<double>(max)) {
    fail(field, fmt::format("{} is absurdly large (at most {} bytes)", text, max));
  }
  return static_cast<std::int64_t>(bytes);
}

}  // namespace longseq
