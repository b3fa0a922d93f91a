// `longseq suite plan`: what a suite will run, grouped by rank count (one MPI job each).
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "runtime/device.h"
#include "runtime/dtype.h"
#include "suites/spec/suite_spec.h"

namespace longseq {

namespace {

// Three significant-ish digits without exponents: 12345, 12.35, 0.1235, 0.0012.
std::string compact(double value) {
  if (value >= 100) {
    return fmt::format("{:.0f}", value);
  }
  if (value >= 1) {
    return fmt::format("{:.2f}", value);
  }
  return fmt::format("{:.4f}", value);
}

std::string bytes_text(double bytes) {
  constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  std::size_t unit = 0;
  while (bytes >= 1024 && unit + 1 < std::size(kUnits)) {
    bytes /= 1024;
    ++unit;
  }
  return fmt::format("{} {}", unit == 0 ? fmt::format("{:.0f}", bytes) : compact(bytes),
                     kUnits[unit]);
}

constexpr double kMiB = 1024.0 * 1024.0;

std::string row(const std::string& index, const std::string& mixer, const std::string& seq,
                const std::string& ranks, const std::string& layout, const std::string& strategy,
                const std::string& pass, const std::string& dtype, const std::string& device,
                const std::string& gflop, const std::string& mib) {
  return fmt::format("{:>5} {:<9} {:>8} {:>5}  {:<10} {:<9} {:<4} {:<5} {:<6} {:>11} {:>10}\n",
                     index, mixer, seq, ranks, layout, strategy, pass, dtype, device, gflop, mib);
}

}  // namespace

std::string plan_text(const Suite& suite) {
  std::string text = fmt::format("suite {} ({}): {} run{}\n", suite.name, suite.path,
                                 suite.runs.size(), suite.runs.size() == 1 ? "" : "s");
  if (!suite.description.empty()) {
    std::string description = suite.description;
    std::replace(description.begin(), description.end(), '\n', ' ');
    while (!description.empty() && description.back() == ' ') {
      description.pop_back();
    }
    text += fmt::format("  {}\n", description);
  }
  const BenchConfig& first = suite.runs.empty() ? BenchConfig{} : suite.runs.front().bench;
  const auto checked = std::count_if(suite.runs.begin(), suite.runs.end(),
                                     [](const SuiteRun& run) { return run.bench.check; });
  const std::string check =
      checked == 0 ? "off"
      : static_cast<std::size_t>(checked) == suite.runs.size()
          ? "on"
          : fmt::format("on for {} of the {} runs", checked, suite.runs.size());
  text += fmt::format("  repetitions {}, warm-up {}, check {}\n", first.reps, first.warmup, check);
  std::vector<std::string> limits;
  if (suite.limits.timeout_s > 0) {
    limits.push_back(fmt::format("timeout {} s", suite.limits.timeout_s));
  }
  if (suite.limits.memory_bytes > 0) {
    limits.push_back(fmt::format("memory {} per rank",
                                 bytes_text(static_cast<double>(suite.limits.memory_bytes))));
  }
  if (!limits.empty()) {
    text += fmt::format("  limits per run: {}\n", fmt::join(limits, ", "));
  }

  std::map<int, std::vector<const SuiteRun*>> by_ranks;
  for (const SuiteRun& run : suite.runs) {
    by_ranks[run.ranks].push_back(&run);
  }
  double total_flops = 0;
  double repeated_flops = 0;
  double largest_bytes = 0;
  std::vector<std::string> rank_counts;
  for (const auto& [ranks, runs] : by_ranks) {
    double flops = 0;
    for (const SuiteRun* run : runs) {
      flops += run->predicted_flops;
    }
    text += fmt::format("\nranks {}: {} run{}, {} TFLOP\n", ranks, runs.size(),
                        runs.size() == 1 ? "" : "s", compact(flops * 1e-12));
    text += row("#", "mixer", "seq", "ranks", "layout", "strategy", "pass", "dtype", "device",
                "GFLOP", "MiB/rank");
    for (const SuiteRun* run : runs) {
      const BenchConfig& config = run->bench;
      text += row(std::to_string(run->index), config.mixer, std::to_string(config.seq),
                  std::to_string(run->ranks), config.layout, config.mixer_options.strategy,
                  config.pass, std::string(dtype_name(config.mixer_options.dtype)),
                  std::string(device_name(config.mixer_options.device)),
                  compact(run->predicted_flops * 1e-9),
                  compact(static_cast<double>(run->predicted_memory_bytes) / kMiB));
      repeated_flops += run->predicted_flops * (config.reps + config.warmup);
      largest_bytes = std::max(largest_bytes, static_cast<double>(run->predicted_memory_bytes));
    }
    total_flops += flops;
    rank_counts.push_back(std::to_string(ranks));
  }

  text += fmt::format("\ntotal: {} run{} on {} rank count{} ({})\n", suite.runs.size(),
                      suite.runs.size() == 1 ? "" : "s", rank_counts.size(),
                      rank_counts.size() == 1 ? "" : "s", fmt::join(rank_counts, ", "));
  text += fmt::format("  {} TFLOP predicted, {} TFLOP with warm-up and repetitions\n",
                      compact(total_flops * 1e-12), compact(repeated_flops * 1e-12));
  text += fmt::format("  largest run: {} per rank", bytes_text(largest_bytes));
  if (suite.excluded_runs > 0 || suite.duplicate_runs > 0) {
    text += fmt::format("; {} excluded, {} duplicate{} dropped", suite.excluded_runs,
                        suite.duplicate_runs, suite.duplicate_runs == 1 ? "" : "s");
  }
  text +=
      "\n  GFLOP: every measured pass once, all ranks, by each mixer's FLOP convention.\n"
      "  MiB/rank: the run's tensors on one rank (inputs, outputs, their gradients, parameters),\n"
      "  a lower bound of the peak.\n";
  return text;
}

}  // namespace longseq
