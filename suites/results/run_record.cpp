#include "suites/results/run_record.h"

#include <fmt/format.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "runtime/error.h"

namespace longseq {

namespace {

void append_json_string(std::string& out, std::string_view text) {
  out += '"';
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

// A reader of one flat JSON object: strings, numbers and null as values.
class FlatJsonReader {
 public:
  FlatJsonReader(std::string_view text, std::string_view where) : text_(text), where_(where) {}

  RunRecord read() {
    RunRecord record;
    expect('{');
    skip_space();
    if (peek() == '}') {
      ++at_;
      finish();
      return record;
    }
    while (true) {
      skip_space();
      const std::string name = read_string();
      expect(':');
      skip_space();
      record.set(name, read_value());
      skip_space();
      if (peek() == ',') {
        ++at_;
        continue;
      }
      expect('}');
      finish();
      return record;
    }
  }

 private:
  [[noreturn]] void fail(std::string_view what) const {
    throw UserError(fmt::format("{}: malformed record at byte {}: {}", where_, at_ + 1, what));
  }
  [[nodiscard]] char peek() const { return at_ < text_.size() ? text_[at_] : '\0'; }
  void skip_space() {
    while (at_ < text_.size() &&
           (text_[at_] == ' ' || text_[at_] == '\t' || text_[at_] == '\r' || text_[at_] == '\n')) {
      ++at_;
    }
  }
  void expect(char c) {
    skip_space();
    if (peek() != c) {
      fail(fmt::format("expected '{}'", c));
    }
    ++at_;
  }
  void finish() {
    skip_space();
    if (at_ != text_.size()) {
      fail("text after the object");
    }
  }
  std::string read_string() {
    if (peek() != '"') {
      fail("expected a string");
    }
    ++at_;
    std::string out;
    while (at_ < text_.size() && text_[at_] != '"') {
      char c = text_[at_++];
      if (c == '\\') {
        if (at_ >= text_.size()) {
          fail("unterminated escape");
        }
        const char e = text_[at_++];
        switch (e) {
          case '"':
            c = '"';
            break;
          case '\\':
            c = '\\';
            break;
          case '/':
            c = '/';
            break;
          case 'n':
            c = '\n';
            break;
          case 'r':
            c = '\r';
            break;
          case 't':
            c = '\t';
            break;
          case 'b':
            c = '\b';
            break;
          case 'f':
            c = '\f';
            break;
          case 'u': {
            if (at_ + 4 > text_.size()) {
              fail("short \\u escape");
            }
            const unsigned code = static_cast<unsigned>(
                std::strtoul(std::string(text_.substr(at_, 4)).c_str(), nullptr, 16));
            at_ += 4;
            append_utf8(out, code);
            continue;
          }
          default:
            fail("unknown escape");
        }
      }
      out += c;
    }
    if (at_ >= text_.size()) {
      fail("unterminated string");
    }
    ++at_;
    return out;
  }
  static void append_utf8(std::string& out, unsigned code) {
    if (code < 0x80) {
      out += static_cast<char>(code);
    } else if (code < 0x800) {
      out += static_cast<char>(0xC0 | (code >> 6));
      out += static_cast<char>(0x80 | (code & 0x3F));
    } else {
      out += static_cast<char>(0xE0 | (code >> 12));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (code & 0x3F));
    }
  }
  FieldValue read_value() {
    if (peek() == '"') {
      return read_string();
    }
    if (text_.substr(at_, 4) == "null") {
      at_ += 4;
      return std::numeric_limits<double>::quiet_NaN();
    }
    const std::size_t begin = at_;
    bool integral = true;
    while (at_ < text_.size()) {
      const char c = text_[at_];
      if (c == '.' || c == 'e' || c == 'E') {
        integral = false;
      } else if (!(c == '-' || c == '+' || (c >= '0' && c <= '9'))) {
        break;
      }
      ++at_;
    }
    const std::string number(text_.substr(begin, at_ - begin));
    if (number.empty()) {
      fail("expected a value");
    }
    char* end = nullptr;
    if (integral) {
      errno = 0;
      const long long value = std::strtoll(number.c_str(), &end, 10);
      if (end == number.c_str() + number.size() && errno == 0) {
        return static_cast<std::int64_t>(value);
      }
    }
    const double value = std::strtod(number.c_str(), &end);
    if (end != number.c_str() + number.size()) {
      fail(fmt::format("bad number '{}'", number));
    }
    return value;
  }

  std::string_view text_;
  std::string_view where_;
  std::size_t at_ = 0;
};

}  // namespace

void RunRecord::set(std::string_view name, FieldValue value) {
  for (auto& [key, existing] : fields_) {
    if (key == name) {
      existing = std::move(value);
      return;
    }
  }
  fields_.emplace_back(std::string(name), std::move(value));
}

const FieldValue* RunRecord::find(std::string_view name) const {
  for (const auto& [key, value] : fields_) {
    if (key == name) {
      return &value;
    }
  }
  return nullptr;
}

const std::string& RunRecord::text(std::string_view name) const {
  const FieldValue* value = find(name);
  LONGSEQ_CHECK(value != nullptr && std::holds_alternative<std::string>(*value),
                "[run_record] field '{}' is {}", name, value ? "not text" : "missing");
  return std::get<std::string>(*value);
}

double RunRecord::number(std::string_view name) const {
  const FieldValue* value = find(name);
  LONGSEQ_CHECK(value != nullptr && !std::holds_alternative<std::string>(*value),
                "[run_record] field '{}' is {}", name, value ? "not a number" : "missing");
  if (const auto* integer = std::get_if<std::int64_t>(value)) {
    return static_cast<double>(*integer);
  }
  return std::get<double>(*value);
}

std::int64_t RunRecord::integer(std::string_view name) const {
  const FieldValue* value = find(name);
  LONGSEQ_CHECK(value != nullptr && std::holds_alternative<std::int64_t>(*value),
                "[run_record] field '{}' is {}", name, value ? "not an integer" : "missing");
  return std::get<std::int64_t>(*value);
}

std::string field_text(const FieldValue& value) {
  if (const auto* integer = std::get_if<std::int64_t>(&value)) {
    return fmt::format("{}", *integer);
  }
  if (const auto* real = std::get_if<double>(&value)) {
    return fmt::format("{:.17g}", *real);
  }
  return std::get<std::string>(value);
}

std::string record_to_json(const RunRecord& record) {
  std::string out = "{";
  bool first = true;
  for (const auto& [name, value] : record.fields()) {
    if (!first) {
      out += ", ";
    }
    first = false;
    append_json_string(out, name);
    out += ": ";
    if (const auto* text = std::get_if<std::string>(&value)) {
      append_json_string(out, *text);
    } else if (const auto* real = std::get_if<double>(&value); real && !std::isfinite(*real)) {
      out += "null";
    } else if (real) {
      // A whole double ("4096") would read back as an integer: keep it a double ("4096.0").
      const std::string text = field_text(value);
      out += text;
      if (text.find_first_not_of("-0123456789") == std::string::npos) {
        out += ".0";
      }
    } else {
      out += field_text(value);
    }
  }
  out += "}";
  return out;
}

RunRecord record_from_json(std::string_view line, std::string_view where) {
  return FlatJsonReader(line, where).read();
}

}  // namespace longseq
