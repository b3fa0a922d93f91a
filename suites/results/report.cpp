#include "suites/results/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "suites/results/record_fields.h"

namespace longseq {

namespace {

// The fields that head every group; the other varying configuration fields are added to them.
const std::vector<std::string> kGroupFields = {"mixer", "ranks", "pass", "device", "dtype"};

struct Group {
  std::string title;
  std::vector<const RunRecord*> records;
};

std::vector<Group> group_records(const std::vector<RunRecord>& records) {
  std::vector<const RunRecord*> all;
  all.reserve(records.size());
  for (const RunRecord& record : records) {
    all.push_back(&record);
  }
  std::vector<std::string> candidates;
  for (const std::string& name : config_field_names()) {
    if (name != "seq" && name != "reps" && name != "warmup" && name != "check" &&
        std::find(kGroupFields.begin(), kGroupFields.end(), name) == kGroupFields.end()) {
      candidates.push_back(name);
    }
  }
  std::vector<std::string> keys = kGroupFields;
  for (const std::string& name : varying_fields(all, candidates)) {
    keys.push_back(name);
  }
  std::vector<Group> groups;
  for (const RunRecord* record : all) {
    std::string title;
    for (const std::string& name : keys) {
      if (record->has(name)) {
        title += fmt::format("{}{}={}", title.empty() ? "" : "  ", name, text_field(*record, name));
      }
    }
    auto it = std::find_if(groups.begin(), groups.end(),
                           [&](const Group& g) { return g.title == title; });
    if (it == groups.end()) {
      groups.push_back({title, {}});
      it = groups.end() - 1;
    }
    it->records.push_back(record);
  }
  return groups;
}

std::string number_cell(const std::optional<double>& value, const char* format) {
  if (!value || std::isnan(*value)) {
    return "-";
  }
  return fmt::format(fmt::runtime(format), *value);
}

std::optional<double> yardstick_ratio(const RunRecord& record) {
  for (const char* name : {"yardstick_ratio", "ratio_to_yardstick"}) {
    if (const auto ratio = number_field(record, name)) {
      return ratio;
    }
  }
  const auto gflops = number_field(record, "gflops");
  const auto yardstick = number_field(record, "yardstick_gflops");
  if (gflops && yardstick && *yardstick > 0) {
    return *gflops / *yardstick;
  }
  return std::nullopt;
}

std::optional<double> mebibytes(const RunRecord& record, const char* name) {
  const auto bytes = number_field(record, name);
  return bytes ? std::optional<double>(*bytes / (1 << 20)) : std::nullopt;
}

std::string group_table(const Group& group) {
  std::vector<const RunRecord*> rows = group.records;
  std::stable_sort(rows.begin(), rows.end(), [](const RunRecord* a, const RunRecord* b) {
    return number_field(*a, "seq").value_or(0) < number_field(*b, "seq").value_or(0);
  });
  std::string text = group.title + "\n";
  text += fmt::format("  {:>9}  {:>11}  {:>9}  {:>11}  {:>13}  {:>13}  {:>11}\n", "seq", "median s",
                      "GFLOP/s", "x yardstick", "peak MiB/rank", "sent MiB/rank", "max_rel_err");
  std::vector<std::pair<double, double>> times;
  std::vector<std::pair<double, double>> memory;
  for (const RunRecord* record : rows) {
    const auto seq = number_field(*record, "seq");
    const std::string seq_cell = seq ? fmt::format("{}", *seq) : "-";
    if (!is_ok(*record)) {
      text += fmt::format("  {:>9}  FAILED: {}\n", seq_cell, text_field(*record, "message"));
      continue;
    }
    const auto median = number_field(*record, "median_s");
    const auto peak = number_field(*record, "peak_mem_bytes");
    if (seq && median) {
      times.emplace_back(*seq, *median);
    }
    if (seq && peak) {
      memory.emplace_back(*seq, *peak);
    }
    text += fmt::format("  {:>9}  {:>11}  {:>9}  {:>11}  {:>13}  {:>13}  {:>11}\n", seq_cell,
                        number_cell(median, "{:.4e}"),
                        number_cell(number_field(*record, "gflops"), "{:.1f}"),
                        number_cell(yardstick_ratio(*record), "{:.3f}"),
                        number_cell(mebibytes(*record, "peak_mem_bytes"), "{:.1f}"),
                        number_cell(mebibytes(*record, "bytes_sent"), "{:.2f}"),
                        number_cell(number_field(*record, "max_rel_err"), "{:.2e}"));
  }
  const double time_slope = loglog_slope(times);
  const double memory_slope = loglog_slope(memory);
  if (!std::isnan(time_slope) || !std::isnan(memory_slope)) {
    text += fmt::format(
        "  log-log slope against seq (least squares over {} runs): time {}, memory {}\n",
        times.size(), number_cell(time_slope, "{:.2f}"), number_cell(memory_slope, "{:.2f}"));
  }
  return text;
}

}  // namespace

double loglog_slope(const std::vector<std::pair<double, double>>& points) {
  std::vector<std::pair<double, double>> logs;
  for (const auto& [x, y] : points) {
    if (x > 0 && y > 0 && std::isfinite(x) && std::isfinite(y)) {
      logs.emplace_back(std::log(x), std::log(y));
    }
  }
  if (logs.size() < 2) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  double mean_x = 0;
  double mean_y = 0;
  for (const auto& [x, y] : logs) {
    mean_x += x;
    mean_y += y;
  }
  mean_x /= static_cast<double>(logs.size());
  mean_y /= static_cast<double>(logs.size());
  double sxx = 0;
  double sxy = 0;
  for (const auto& [x, y] : logs) {
    sxx += (x - mean_x) * (x - mean_x);
    sxy += (x - mean_x) * (y - mean_y);
  }
  if (sxx == 0) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  return sxy / sxx;
}

std::string report_tables(const std::vector<RunRecord>& records) {
  const auto failed =
      std::count_if(records.begin(), records.end(), [](const RunRecord& r) { return !is_ok(r); });
  std::string text = fmt::format("{} records: {} ok, {} failed\n", records.size(),
                                 static_cast<long>(records.size()) - failed, failed);
  if (!records.empty()) {
    std::string context;
    for (const char* name : {"suite", "hostname", "cpu_model", "gpu", "git_commit",
                             "yardstick_name", "flop_convention"}) {
      const std::string value = text_field(records.front(), name);
      if (!value.empty()) {
        context += fmt::format("{}{}: {}", context.empty() ? "" : "; ", name, value);
      }
    }
    if (!context.empty()) {
      text += context + "\n";
    }
  }
  for (const Group& group : group_records(records)) {
    text += '\n';
    text += group_table(group);
  }
  return text;
}

}  // namespace longseq
