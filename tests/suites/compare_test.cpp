// `longseq compare`: matching by (run_key, pass), time ratios normalised by the yardstick,
// deterministic quantities, failed, missing and new runs, tolerances, and the table's order.
#include "suites/results/compare.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <sstream>

namespace longseq {
namespace {

RunRecord measured(const std::string& mixer, std::int64_t seq, std::int64_t ranks,
                   const std::string& pass, double median_s) {
  RunRecord record;
  record.set("suite", std::string("ci"));
  record.set("run_key",
             fmt::format("mixer={} seq={} ranks={} layout=contiguous", mixer, seq, ranks));
  record.set("pass", pass);
  record.set("mixer", mixer);
  record.set("seq", seq);
  record.set("ranks", ranks);
  record.set("layout", std::string("contiguous"));
  record.set("status", std::string("ok"));
  record.set("message", std::string());
  record.set("median_s", median_s);
  record.set("yardstick_gflops", 400.0);
  record.set("peak_mem_bytes", std::int64_t{64} << 20);
  record.set("bytes_sent", std::int64_t{1} << 20);
  record.set("max_rel_err", 1e-6);
  record.set("tolerance_time", 0.10);
  record.set("tolerance_memory", 0.0);
  record.set("tolerance_error", 1e-4);
  record.set("normalise", std::string("yardstick"));
  return record;
}

std::vector<RunRecord> baseline() {
  std::vector<RunRecord> records;
  for (const char* mixer : {"flash", "linear"}) {
    for (const std::int64_t seq : {1024, 4096}) {
      for (const char* pass : {"fwd", "bwd"}) {
        records.push_back(measured(mixer, seq, 2, pass, 1e-6 * static_cast<double>(seq)));
      }
    }
  }
  return records;
}

// The record of `mixer` at `seq` and `pass` in `records`.
RunRecord& find(std::vector<RunRecord>& records, const std::string& mixer, std::int64_t seq,
                const std::string& pass) {
  for (RunRecord& record : records) {
    if (record.text("mixer") == mixer && record.integer("seq") == seq &&
        record.text("pass") == pass) {
      return record;
    }
  }
  throw std::runtime_error("no such record");
}

// The first row of the table (the line after its header).
std::string first_row(const std::string& text) {
  std::istringstream lines(text);
  std::string line;
  std::getline(lines, line);  // summary
  std::getline(lines, line);  // header
  std::getline(lines, line);
  return line;
}

TEST(Compare, UnchangedCopyHasNoRegression) {
  const CompareOutcome outcome = compare_results(baseline(), baseline());
  EXPECT_FALSE(outcome.regressed) << outcome.text;
  EXPECT_EQ(outcome.matched, 8);
  EXPECT_EQ(outcome.regressions + outcome.improved + outcome.missing + outcome.added, 0);
  EXPECT_NE(
      outcome.text.find("8 matched, 0 regressed, 0 improved, 0 missing, 0 new: no regression"),
      std::string::npos)
      << outcome.text;
}

TEST(Compare, DoubledTimeIsARegressionNamingTheRun) {
  std::vector<RunRecord> current = baseline();
  RunRecord& slow = find(current, "linear", 4096, "bwd");
  slow.set("median_s", slow.number("median_s") * 2);
  const CompareOutcome outcome = compare_results(current, baseline());
  EXPECT_TRUE(outcome.regressed);
  EXPECT_EQ(outcome.regressions, 1);
  const std::string row = first_row(outcome.text);
  EXPECT_NE(row.find("linear seq=4K ranks=2 contiguous bwd"), std::string::npos) << outcome.text;
  EXPECT_NE(row.find("time x2.00 > 1.10"), std::string::npos) << outcome.text;
  EXPECT_NE(row.find("2.000"), std::string::npos) << outcome.text;
}

TEST(Compare, SlowerMachineIsNotARegressionWhenNormalisedByTheYardstick) {
  std::vector<RunRecord> current = baseline();
  for (RunRecord& record : current) {
    record.set("median_s", record.number("median_s") * 2);
    record.set("yardstick_gflops", 200.0);
  }
  const CompareOutcome normalised = compare_results(current, baseline());
  EXPECT_FALSE(normalised.regressed) << normalised.text;
  for (RunRecord& record : current) {
    record.set("normalise", std::string("none"));
  }
  const CompareOutcome raw = compare_results(current, baseline());
  EXPECT_TRUE(raw.regressed);
  EXPECT_EQ(raw.regressions, 8);
}

TEST(Compare, MemoryOrTrafficGrowthIsARegression) {
  std::vector<RunRecord> current = baseline();
  RunRecord& grown = find(current, "flash", 1024, "fwd");
  grown.set("peak_mem_bytes", grown.integer("peak_mem_bytes") + 1);
  const CompareOutcome memory = compare_results(current, baseline());
  EXPECT_TRUE(memory.regressed);
  EXPECT_EQ(memory.regressions, 1);
  EXPECT_NE(first_row(memory.text).find("memory 67108864 B -> 67108865 B"), std::string::npos)
      << memory.text;

  current = baseline();
  RunRecord& chatty = find(current, "flash", 4096, "bwd");
  chatty.set("bytes_sent", std::int64_t{2} << 20);
  const CompareOutcome traffic = compare_results(current, baseline());
  EXPECT_TRUE(traffic.regressed);
  EXPECT_NE(first_row(traffic.text).find("bytes sent 1.0 MiB -> 2.0 MiB"), std::string::npos)
      << traffic.text;

  // With a memory tolerance of 10 %, 5 % more is fine.
  current = baseline();
  for (RunRecord& record : current) {
    record.set("tolerance_memory", 0.10);
    record.set("peak_mem_bytes", (std::int64_t{64} << 20) * 105 / 100);
  }
  EXPECT_FALSE(compare_results(current, baseline()).regressed);
}

TEST(Compare, ErrorGrowthBeyondTheToleranceIsARegression) {
  std::vector<RunRecord> current = baseline();
  find(current, "linear", 1024, "fwd").set("max_rel_err", 5e-5);  // + 4.9e-5 < 1e-4
  EXPECT_FALSE(compare_results(current, baseline()).regressed);
  find(current, "linear", 1024, "fwd").set("max_rel_err", 5e-4);
  const CompareOutcome outcome = compare_results(current, baseline());
  EXPECT_TRUE(outcome.regressed);
  EXPECT_NE(first_row(outcome.text).find("max_rel_err 1e-06 -> 0.0005"), std::string::npos)
      << outcome.text;
}

TEST(Compare, MissingRunIsARegression) {
  std::vector<RunRecord> current = baseline();
  current.erase(current.begin() + 3);
  const CompareOutcome outcome = compare_results(current, baseline());
  EXPECT_TRUE(outcome.regressed);
  EXPECT_EQ(outcome.missing, 1);
  EXPECT_EQ(outcome.regressions, 0);
  EXPECT_NE(first_row(outcome.text).find("MISSING"), std::string::npos) << outcome.text;
  EXPECT_NE(first_row(outcome.text).find("flash seq=4K ranks=2 contiguous bwd"), std::string::npos)
      << outcome.text;
}

TEST(Compare, RunThatFailsNowIsARegression) {
  std::vector<RunRecord> current = baseline();
  RunRecord& failed = find(current, "flash", 4096, "fwd");
  failed.set("status", std::string("failed"));
  failed.set("message", std::string("out of memory on rank 1"));
  const CompareOutcome outcome = compare_results(current, baseline());
  EXPECT_TRUE(outcome.regressed);
  EXPECT_EQ(outcome.regressions, 1);
  EXPECT_NE(first_row(outcome.text).find("FAILED now: out of memory on rank 1"), std::string::npos)
      << outcome.text;

  // Failed in both is not a new regression; failed before and ok now is an improvement.
  std::vector<RunRecord> before = baseline();
  find(before, "flash", 4096, "fwd") = failed;
  EXPECT_FALSE(compare_results(current, before).regressed);
  const CompareOutcome fixed = compare_results(baseline(), before);
  EXPECT_FALSE(fixed.regressed);
  EXPECT_EQ(fixed.improved, 1);
}

TEST(Compare, NewRunIsNotARegression) {
  std::vector<RunRecord> current = baseline();
  current.push_back(measured("performer", 4096, 2, "fwd", 1e-3));
  const CompareOutcome outcome = compare_results(current, baseline());
  EXPECT_FALSE(outcome.regressed) << outcome.text;
  EXPECT_EQ(outcome.added, 1);
  EXPECT_EQ(outcome.matched, 8);
}

TEST(Compare, ChangesWithinTheToleranceAreFine) {
  std::vector<RunRecord> current = baseline();
  for (RunRecord& record : current) {
    record.set("median_s", record.number("median_s") * 1.09);
  }
  EXPECT_FALSE(compare_results(current, baseline()).regressed);
  RunRecord& slower = find(current, "flash", 1024, "bwd");
  slower.set("median_s", slower.number("median_s") / 1.09 * 1.11);
  EXPECT_TRUE(compare_results(current, baseline()).regressed);
  // A looser tolerance in the current records allows it.
  for (RunRecord& record : current) {
    record.set("tolerance_time", 0.25);
  }
  EXPECT_FALSE(compare_results(current, baseline()).regressed);
}

TEST(Compare, FasterRunsAreImprovements) {
  std::vector<RunRecord> current = baseline();
  RunRecord& faster = find(current, "linear", 1024, "bwd");
  faster.set("median_s", faster.number("median_s") / 2);
  const CompareOutcome outcome = compare_results(current, baseline());
  EXPECT_FALSE(outcome.regressed);
  EXPECT_EQ(outcome.improved, 1);
}

TEST(Compare, RegressionsComeFirstAndTheTableIsBounded) {
  std::vector<RunRecord> current;
  std::vector<RunRecord> before;
  for (std::int64_t i = 0; i < 40; ++i) {
    before.push_back(measured("flash", 1024 * (i + 1), 1, "fwd", 1.0));
    current.push_back(
        measured("flash", 1024 * (i + 1), 1, "fwd", 1.0 + 0.001 * static_cast<double>(i)));
  }
  current[7].set("peak_mem_bytes", std::int64_t{65} << 20);  // time ratio 1.007, memory regressed
  const CompareOutcome outcome = compare_results(current, before);
  EXPECT_TRUE(outcome.regressed);
  EXPECT_NE(first_row(outcome.text).find("flash seq=8K ranks=1"), std::string::npos)
      << outcome.text;
  EXPECT_NE(outcome.text.find("(25 more not shown)"), std::string::npos) << outcome.text;
  // After the regression, the largest time ratio.
  std::istringstream lines(outcome.text);
  std::string line;
  for (int i = 0; i < 4; ++i) {
    std::getline(lines, line);
  }
  EXPECT_NE(line.find("flash seq=40K ranks=1"), std::string::npos) << outcome.text;
}

TEST(Compare, RecordsWithoutRunKeyMatchByTheirConfiguration) {
  auto bench_like = [](double median_s) {
    RunRecord record;
    record.set("mixer", std::string("flash"));
    record.set("seq", std::int64_t{2048});
    record.set("ranks", std::int64_t{1});
    record.set("pass", std::string("fwd"));
    record.set("reps", std::int64_t{3});
    record.set("median_s", median_s);
    return record;
  };
  RunRecord more_reps = bench_like(0.30);
  more_reps.set("reps", std::int64_t{10});
  const CompareOutcome outcome = compare_results({more_reps}, {bench_like(0.1)});
  EXPECT_EQ(outcome.matched, 1);
  EXPECT_TRUE(outcome.regressed);  // no tolerance fields: 10 % by default, no normalisation
}

TEST(Compare, EmptySetsCompareClean) {
  const CompareOutcome outcome = compare_results({}, {});
  EXPECT_FALSE(outcome.regressed);
  EXPECT_EQ(outcome.matched, 0);
}

}  // namespace
}  // namespace longseq
