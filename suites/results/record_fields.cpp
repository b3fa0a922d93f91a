#include "suites/results/record_fields.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace longseq {

std::optional<double> number_field(const RunRecord& record, std::string_view name) {
  const FieldValue* value = record.find(name);
  if (value == nullptr) {
    return std::nullopt;
  }
  if (const auto* integer = std::get_if<std::int64_t>(value)) {
    return static_cast<double>(*integer);
  }
  if (const auto* real = std::get_if<double>(value)) {
    return *real;
  }
  return std::nullopt;
}

std::string text_field(const RunRecord& record, std::string_view name) {
  const FieldValue* value = record.find(name);
  return value != nullptr ? field_text(*value) : std::string();
}

bool is_ok(const RunRecord& record) {
  const FieldValue* status = record.find("status");
  return status == nullptr || field_text(*status) == "ok";
}

const std::vector<std::string>& config_field_names() {
  static const std::vector<std::string> names = {
      "mixer",      "seq",         "batch",    "heads",        "kv_heads", "head_dim",
      "causal",     "ranks",       "layout",   "strategy",     "dtype",    "device",
      "reps",       "warmup",      "seed",     "check",        "features", "redraw_interval",
      "state_size", "local_chunk", "momentum", "momentum_step"};
  return names;
}

std::string match_key(const RunRecord& record) {
  std::string key;
  if (record.has("run_key")) {
    key = text_field(record, "run_key");
  } else {
    for (const std::string& name : config_field_names()) {
      if (name != "reps" && name != "warmup" && name != "check" && record.has(name)) {
        key += fmt::format("{}={} ", name, text_field(record, name));
      }
    }
  }
  return key + "| pass=" + text_field(record, "pass");
}

std::string seq_text(double seq) {
  const auto whole = static_cast<std::int64_t>(seq);
  if (static_cast<double>(whole) != seq || whole <= 0) {
    return fmt::format("{}", seq);
  }
  if (whole % (1 << 20) == 0) {
    return fmt::format("{}M", whole >> 20);
  }
  if (whole % (1 << 10) == 0) {
    return fmt::format("{}K", whole >> 10);
  }
  return fmt::format("{}", whole);
}

std::vector<std::string> varying_fields(const std::vector<const RunRecord*>& records,
                                        const std::vector<std::string>& candidates) {
  std::vector<std::string> varying;
  for (const std::string& name : candidates) {
    const bool differs = std::any_of(records.begin(), records.end(), [&](const RunRecord* r) {
      return text_field(*r, name) != text_field(*records.front(), name);
    });
    if (differs) {
      varying.push_back(name);
    }
  }
  return varying;
}

std::string run_label(const RunRecord& record, const std::vector<std::string>& extras) {
  std::string label;
  if (!record.has("mixer")) {
    label = match_key(record).substr(0, 60);
  } else {
    label = text_field(record, "mixer");
    if (const auto seq = number_field(record, "seq")) {
      label += fmt::format(" seq={}", seq_text(*seq));
    }
    if (record.has("ranks")) {
      label += fmt::format(" ranks={}", text_field(record, "ranks"));
    }
    for (const char* name : {"layout", "pass"}) {
      if (record.has(name)) {
        label += fmt::format(" {}", text_field(record, name));
      }
    }
  }
  for (const std::string& name : extras) {
    label += fmt::format(" {}={}", name, text_field(record, name));
  }
  return label;
}

}  // namespace longseq
