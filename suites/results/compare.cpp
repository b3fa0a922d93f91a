#include "suites/results/compare.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <unordered_map>

#include "suites/results/record_fields.h"

namespace longseq {

namespace {

constexpr std::size_t kTableRows = 15;

struct Tolerance {
  double time;
  double memory;
  double error;
};

Tolerance tolerance_of(const RunRecord& current) {
  return {number_field(current, "tolerance_time").value_or(0.10),
          number_field(current, "tolerance_memory").value_or(0.0),
          number_field(current, "tolerance_error").value_or(1e-4)};
}

// One matched, missing or new run and what changed.
struct Change {
  const RunRecord* current = nullptr;
  const RunRecord* baseline = nullptr;
  std::optional<double> ratio;  // normalised time ratio, current over baseline
  std::vector<std::string> notes;
  bool regressed = false;
  bool improved = false;
};

// The records by match key, first-seen order, the last record of a key winning (a rerun replaces
// an earlier measurement).
std::vector<std::pair<std::string, const RunRecord*>> latest_by_key(
    const std::vector<RunRecord>& records) {
  std::vector<std::pair<std::string, const RunRecord*>> keyed;
  std::unordered_map<std::string, std::size_t> position;
  for (const RunRecord& record : records) {
    std::string key = match_key(record);
    const auto [it, inserted] = position.emplace(key, keyed.size());
    if (inserted) {
      keyed.emplace_back(std::move(key), &record);
    } else {
      keyed[it->second].second = &record;
    }
  }
  return keyed;
}

std::string mebibytes(double bytes) { return fmt::format("{:.1f} MiB", bytes / (1 << 20)); }

std::string shortened(std::string text, std::size_t limit) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text.size() <= limit ? text : text.substr(0, limit - 3) + "...";
}

void compare_time(Change& change, const Tolerance& tolerance) {
  const RunRecord& current = *change.current;
  const RunRecord& baseline = *change.baseline;
  const auto current_s = number_field(current, "median_s");
  const auto baseline_s = number_field(baseline, "median_s");
  if (!current_s || !baseline_s || !(*baseline_s > 0) || !std::isfinite(*current_s)) {
    change.notes.emplace_back("no time to compare");
    return;
  }
  double ratio = *current_s / *baseline_s;
  if (text_field(current, "normalise") == "yardstick") {
    const auto current_yardstick = number_field(current, "yardstick_gflops");
    const auto baseline_yardstick = number_field(baseline, "yardstick_gflops");
    if (current_yardstick && baseline_yardstick && *current_yardstick > 0 &&
        *baseline_yardstick > 0) {
      ratio *= *current_yardstick / *baseline_yardstick;
    } else {
      change.notes.emplace_back("no yardstick: raw time");
    }
  }
  change.ratio = ratio;
  if (ratio > 1 + tolerance.time) {
    change.regressed = true;
    change.notes.push_back(fmt::format("time x{:.2f} > {:.2f}", ratio, 1 + tolerance.time));
  } else if (ratio < 1 / (1 + tolerance.time)) {
    change.improved = true;
    change.notes.push_back(fmt::format("faster x{:.2f}", ratio));
  }
}

void compare_deterministic(Change& change, const Tolerance& tolerance) {
  const RunRecord& current = *change.current;
  const RunRecord& baseline = *change.baseline;
  for (const auto& [field, what] :
       {std::pair{"peak_mem_bytes", "memory"}, std::pair{"bytes_sent", "bytes sent"}}) {
    const auto now = number_field(current, field);
    const auto before = number_field(baseline, field);
    if (now && before && *now > *before * (1 + tolerance.memory)) {
      change.regressed = true;
      std::string from = mebibytes(*before);
      std::string to = mebibytes(*now);
      if (from == to) {  // too small a change to show in MiB
        from = fmt::format("{} B", *before);
        to = fmt::format("{} B", *now);
      }
      change.notes.push_back(fmt::format("{} {} -> {}", what, from, to));
    }
  }
  const auto now = number_field(current, "max_rel_err");
  const auto before = number_field(baseline, "max_rel_err");
  if (now && before && std::isfinite(*before) && !(*now <= *before + tolerance.error)) {
    change.regressed = true;
    change.notes.push_back(fmt::format("max_rel_err {:.3g} -> {:.3g}", *before, *now));
  }
}

void compare_pair(Change& change) {
  const bool ok_now = is_ok(*change.current);
  const bool ok_before = is_ok(*change.baseline);
  if (!ok_now) {
    change.regressed = ok_before;
    change.notes.push_back(
        ok_before
            ? fmt::format("FAILED now: {}", shortened(text_field(*change.current, "message"), 60))
            : std::string("failed in both"));
    return;
  }
  if (!ok_before) {
    change.improved = true;
    change.notes.emplace_back("ok now, failed in the baseline");
    return;
  }
  const Tolerance tolerance = tolerance_of(*change.current);
  compare_time(change, tolerance);
  compare_deterministic(change, tolerance);
}

// Regressions first, the runs without a time ratio (missing, failed) leading them; then the
// largest time ratios.
bool worse_first(const Change& a, const Change& b) {
  if (a.regressed != b.regressed) {
    return a.regressed;
  }
  if (a.ratio.has_value() != b.ratio.has_value()) {
    return a.regressed ? !a.ratio.has_value() : a.ratio.has_value();
  }
  return a.ratio.value_or(0) > b.ratio.value_or(0);
}

std::string seconds(const RunRecord* record) {
  if (record == nullptr || !is_ok(*record)) {
    return "-";
  }
  const auto value = number_field(*record, "median_s");
  return value ? fmt::format("{:.4g}", *value) : "-";
}

std::string table(std::vector<Change>& changes, const std::vector<RunRecord>& current,
                  const std::vector<RunRecord>& baseline) {
  std::stable_sort(changes.begin(), changes.end(), worse_first);
  std::vector<const RunRecord*> all;
  for (const auto* records : {&current, &baseline}) {
    for (const RunRecord& record : *records) {
      all.push_back(&record);
    }
  }
  // Label each run by its mixer, length, ranks, layout and pass, plus whatever else tells runs
  // apart here (dtype, causal, ...); repetition counts do not.
  std::vector<std::string> candidates;
  for (const std::string& name : config_field_names()) {
    if (name != "mixer" && name != "seq" && name != "ranks" && name != "layout" && name != "reps" &&
        name != "warmup" && name != "check") {
      candidates.push_back(name);
    }
  }
  const std::vector<std::string> extras =
      all.empty() ? std::vector<std::string>{} : varying_fields(all, candidates);
  const std::size_t shown = std::min(changes.size(), kTableRows);
  std::vector<std::string> labels;
  std::size_t width = 3;
  for (std::size_t i = 0; i < shown; ++i) {
    const Change& change = changes[i];
    labels.push_back(
        shortened(run_label(change.current ? *change.current : *change.baseline, extras), 72));
    width = std::max(width, labels.back().size());
  }
  std::string text = fmt::format("{:<{}}  {:>10}  {:>10}  {:>6}  {}\n", "run", width, "baseline s",
                                 "current s", "ratio", "change");
  for (std::size_t i = 0; i < shown; ++i) {
    const Change& change = changes[i];
    std::string notes;
    for (const std::string& note : change.notes) {
      notes += notes.empty() ? "" : "; ";
      notes += note;
    }
    std::string row = fmt::format("{:<{}}  {:>10}  {:>10}  {:>6}  {}", labels[i], width,
                                  seconds(change.baseline), seconds(change.current),
                                  change.ratio ? fmt::format("{:.3f}", *change.ratio) : "-", notes);
    row.erase(row.find_last_not_of(' ') + 1);
    text += row;
    text += '\n';
  }
  if (changes.size() > shown) {
    text += fmt::format("({} more not shown)\n", changes.size() - shown);
  }
  return text;
}

}  // namespace

CompareOutcome compare_results(const std::vector<RunRecord>& current,
                               const std::vector<RunRecord>& baseline) {
  const auto now = latest_by_key(current);
  const auto before = latest_by_key(baseline);
  std::unordered_map<std::string, const RunRecord*> baseline_by_key(before.begin(), before.end());
  std::unordered_map<std::string, const RunRecord*> current_by_key(now.begin(), now.end());
  CompareOutcome outcome;
  std::vector<Change> changes;
  for (const auto& [key, record] : now) {
    const auto match = baseline_by_key.find(key);
    if (match == baseline_by_key.end()) {
      ++outcome.added;
      continue;
    }
    Change change;
    change.current = record;
    change.baseline = match->second;
    compare_pair(change);
    ++outcome.matched;
    outcome.regressions += change.regressed ? 1 : 0;
    outcome.improved += change.improved ? 1 : 0;
    changes.push_back(std::move(change));
  }
  for (const auto& [key, record] : before) {
    if (current_by_key.count(key) == 0) {
      ++outcome.missing;
      Change change;
      change.baseline = record;
      change.regressed = true;
      change.notes.emplace_back("MISSING: not measured now");
      changes.push_back(std::move(change));
    }
  }
  outcome.regressed = outcome.regressions > 0 || outcome.missing > 0;
  outcome.text =
      fmt::format("compare: {} matched, {} regressed, {} improved, {} missing, {} new: {}\n",
                  outcome.matched, outcome.regressions, outcome.improved, outcome.missing,
                  outcome.added, outcome.regressed ? "REGRESSION" : "no regression");
  if (!changes.empty()) {
    outcome.text += table(changes, current, baseline);
  }
  return outcome;
}

}  // namespace longseq
