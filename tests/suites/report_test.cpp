// `longseq report`: tables grouped by configuration with rows by length, fitted log-log slopes,
// failed runs, and the plots made by the embedded script where Python can make them.
#include "suites/results/report.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "suites/results/report_plots.h"
#include "suites/results/results_file.h"

namespace longseq {
namespace {

namespace fs = std::filesystem;

RunRecord measured(const std::string& mixer, std::int64_t seq, std::int64_t ranks,
                   const std::string& pass, double median_s, std::int64_t peak_bytes) {
  RunRecord record;
  record.set("suite", std::string("scaling"));
  record.set("mixer", mixer);
  record.set("seq", seq);
  record.set("ranks", ranks);
  record.set("dtype", std::string("fp32"));
  record.set("device", std::string("cpu"));
  record.set("pass", pass);
  record.set("status", std::string("ok"));
  record.set("message", std::string());
  record.set("median_s", median_s);
  record.set("gflops", 100.0);
  record.set("yardstick_gflops", 400.0);
  record.set("yardstick_ratio", 0.25);
  record.set("peak_mem_bytes", peak_bytes);
  record.set("bytes_sent", std::int64_t{3} << 19);
  record.set("max_rel_err", 2.5e-7);
  return record;
}

// linear: time ~ seq, memory ~ seq; softmax: time ~ seq^2, memory ~ seq^2; both on 2 ranks, fwd.
std::vector<RunRecord> scaling_records() {
  std::vector<RunRecord> records;
  for (std::int64_t seq = 1024; seq <= 16384; seq *= 2) {
    const auto n = static_cast<double>(seq);
    records.push_back(measured("linear", seq, 2, "fwd", 1e-7 * n, seq * 4096));
    records.push_back(
        measured("softmax", seq, 2, "fwd", 1e-10 * n * n, static_cast<std::int64_t>(n * n)));
  }
  return records;
}

TEST(Report, SlopeOfPowerLaws) {
  std::vector<std::pair<double, double>> linear;
  std::vector<std::pair<double, double>> quadratic;
  for (double n = 1000; n < 1e6; n *= 3) {
    linear.emplace_back(n, 5 * n);
    quadratic.emplace_back(n, 0.5 * n * n);
  }
  EXPECT_NEAR(loglog_slope(linear), 1.0, 1e-12);
  EXPECT_NEAR(loglog_slope(quadratic), 2.0, 1e-12);
  EXPECT_TRUE(std::isnan(loglog_slope({{1024, 1.0}})));
  EXPECT_TRUE(std::isnan(loglog_slope({{1024, 1.0}, {1024, 2.0}})));
  EXPECT_TRUE(std::isnan(loglog_slope({{1024, 1.0}, {0, 2.0}})));
}

TEST(Report, TablesHaveARowPerLengthAndTheSlopes) {
  const std::string text = report_tables(scaling_records());
  EXPECT_NE(text.find("10 records: 10 ok, 0 failed"), std::string::npos) << text;
  const std::size_t linear = text.find("mixer=linear  ranks=2  pass=fwd  device=cpu  dtype=fp32");
  const std::size_t softmax = text.find("mixer=softmax  ranks=2  pass=fwd  device=cpu  dtype=fp32");
  ASSERT_NE(linear, std::string::npos) << text;
  ASSERT_NE(softmax, std::string::npos) << text;
  const std::string linear_table = text.substr(linear, softmax - linear);
  const std::string softmax_table = text.substr(softmax);
  for (const char* seq : {" 1024 ", " 2048 ", " 4096 ", " 8192 ", " 16384 "}) {
    EXPECT_NE(linear_table.find(seq), std::string::npos) << seq << "\n" << text;
  }
  // seq 4096 of linear: 4.096e-4 s, 100 GFLOP/s, 0.25 of the yardstick, 16 MiB, 1.5 MiB sent.
  EXPECT_NE(linear_table.find("4096   4.0960e-04      100.0        0.250           16.0"),
            std::string::npos)
      << linear_table;
  EXPECT_NE(linear_table.find("1.50     2.50e-07"), std::string::npos) << linear_table;
  EXPECT_NE(linear_table.find("least squares over 5 runs): time 1.00, memory 1.00"),
            std::string::npos)
      << linear_table;
  EXPECT_NE(softmax_table.find("time 2.00, memory 2.00"), std::string::npos) << softmax_table;
}

TEST(Report, FailedRunsShowTheirMessage) {
  std::vector<RunRecord> records = scaling_records();
  RunRecord failed = measured("linear", 32768, 2, "fwd", 0, 0);
  failed.set("status", std::string("failed"));
  failed.set("message", std::string("timed out after 600 s"));
  records.push_back(failed);
  const std::string text = report_tables(records);
  EXPECT_NE(text.find("11 records: 10 ok, 1 failed"), std::string::npos) << text;
  EXPECT_NE(text.find("32768  FAILED: timed out after 600 s"), std::string::npos) << text;
  EXPECT_NE(text.find("time 1.00, memory 1.00"), std::string::npos) << text;  // failed run left out
}

TEST(Report, OtherVaryingSettingsSplitTheGroups) {
  std::vector<RunRecord> records = scaling_records();
  for (RunRecord& record : records) {
    record.set("causal", std::int64_t{1});
  }
  RunRecord full = measured("linear", 4096, 2, "fwd", 1e-3, 1 << 20);
  full.set("causal", std::int64_t{0});
  records.push_back(full);
  const std::string text = report_tables(records);
  EXPECT_NE(text.find("dtype=fp32  causal=0"), std::string::npos) << text;
  EXPECT_NE(text.find("dtype=fp32  causal=1"), std::string::npos) << text;
  // A group with one length has no slope.
  const std::string causal0 = text.substr(text.find("causal=0"));
  EXPECT_EQ(causal0.substr(0, causal0.find("\n\n")).find("slope"), std::string::npos) << text;
}

class ReportPlotsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "longseq-report-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  void expect_plots(const std::string& results) {
    const std::string reason = plots_unavailable_reason();
    if (!reason.empty()) {
      GTEST_SKIP() << reason;
    }
    const fs::path out = dir_ / "plots";
    const ReportPlots plots = write_report_plots(results, out.string());
    EXPECT_EQ(plots.skipped, "");
    int png = 0;
    int svg = 0;
    for (const std::string& file : plots.files) {
      ASSERT_TRUE(fs::exists(file)) << file;
      EXPECT_GT(fs::file_size(file), 1000u) << file;
      EXPECT_EQ(fs::path(file).parent_path(), out);
      png += fs::path(file).extension() == ".png" ? 1 : 0;
      svg += fs::path(file).extension() == ".svg" ? 1 : 0;
    }
    EXPECT_EQ(png, 2);  // one figure per pass
    EXPECT_EQ(svg, 2);
  }

  static std::vector<RunRecord> two_passes() {
    std::vector<RunRecord> records = scaling_records();
    for (RunRecord record : scaling_records()) {
      record.set("pass", std::string("bwd"));
      records.push_back(record);
    }
    return records;
  }

  fs::path dir_;
};

TEST_F(ReportPlotsTest, PngAndSvgFromAnHdf5File) {
  const std::string results = (dir_ / "results.h5").string();
  write_results(results, two_passes());
  expect_plots(results);
}

TEST_F(ReportPlotsTest, PngAndSvgFromJsonLines) {
  const std::string results = (dir_ / "results.jsonl").string();
  export_json(two_passes(), results);
  expect_plots(results);
}

TEST_F(ReportPlotsTest, NothingToPlotIsAReasonNotAnError) {
  if (!plots_unavailable_reason().empty()) {
    GTEST_SKIP() << plots_unavailable_reason();
  }
  RunRecord failed = measured("linear", 1024, 1, "fwd", 0, 0);
  failed.set("status", std::string("failed"));
  const std::string results = (dir_ / "failed.h5").string();
  write_results(results, {failed});
  const ReportPlots plots = write_report_plots(results, (dir_ / "plots").string());
  EXPECT_TRUE(plots.files.empty());
  EXPECT_NE(plots.skipped.find("no successful runs"), std::string::npos) << plots.skipped;
}

}  // namespace
}  // namespace longseq
