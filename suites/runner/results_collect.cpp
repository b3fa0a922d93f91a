#include "suites/runner/results_collect.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <ostream>

#include "runtime/error.h"
#include "suites/results/results_file.h"
#include "suites/runner/run_records.h"

namespace longseq {

namespace {

namespace fs = std::filesystem;

std::vector<std::string> expand_inputs(const std::vector<std::string>& inputs,
                                       const std::string& output) {
  std::vector<std::string> files;
  for (const std::string& input : inputs) {
    if (fs::is_directory(input)) {
      std::vector<std::string> found;
      for (const fs::directory_entry& entry : fs::directory_iterator(input)) {
        std::error_code error;
        const bool is_output = fs::equivalent(entry.path(), output, error);
        if (entry.is_regular_file() && entry.path().extension() == ".h5" && !is_output) {
          found.push_back(entry.path().string());
        }
      }
      std::sort(found.begin(), found.end());
      LONGSEQ_REQUIRE(!found.empty(), "suite collect: no .h5 results files in {}", input);
      files.insert(files.end(), found.begin(), found.end());
    } else {
      LONGSEQ_REQUIRE(fs::exists(input), "suite collect: {} does not exist", input);
      files.push_back(input);
    }
  }
  return files;
}

bool better(const RunRecord& candidate, const RunRecord& held) {
  const bool candidate_ok = candidate.text("status") == "ok";
  const bool held_ok = held.text("status") == "ok";
  if (candidate_ok != held_ok) {
    return candidate_ok;
  }
  const auto when = [](const RunRecord& r) {
    return r.has("finished_at") ? r.text("finished_at") : std::string();
  };
  return when(candidate) >= when(held);
}

}  // namespace

int collect_results(const std::vector<std::string>& inputs, const std::string& output,
                    std::ostream& out) {
  LONGSEQ_REQUIRE(!inputs.empty(), "suite collect: no results files given");
  // Refuse early, before reading everything, when the output is somebody else's file.
  static_cast<void>(is_results_file(output));
  std::vector<RunRecord> merged;
  std::map<std::string, std::size_t> position;
  for (const std::string& file : expand_inputs(inputs, output)) {
    const std::vector<RunRecord> records = read_results(file);
    for (const RunRecord& record : records) {
      const std::string key = measurement_key(record);
      const auto found = position.find(key);
      if (found == position.end()) {
        position[key] = merged.size();
        merged.push_back(record);
      } else if (better(record, merged[found->second])) {
        merged[found->second] = record;
      }
    }
    out << fmt::format("{}: {} records\n", file, records.size());
  }
  write_results(output, merged);
  const auto failed = std::count_if(merged.begin(), merged.end(),
                                    [](const RunRecord& r) { return r.text("status") != "ok"; });
  out << fmt::format("{}: {} records ({} failed)\n", output, merged.size(), failed);
  return 0;
}

}  // namespace longseq
