// Results files: HDF5 and JSON-lines round trips, CSV export, safe replacement (refusing foreign
// files, stale temporaries, writers killed part-way), errors that name the path, and h5py as a
// second reader. Also the HDF5 members of the error-check family.
#include "suites/results/results_file.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <thread>

#include "runtime/error.h"
#include "runtime/hdf5.h"
#include "suites/results/captured_process.h"

namespace longseq {
namespace {

namespace fs = std::filesystem;

class ResultsFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "longseq-results-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }
  [[nodiscard]] std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

const char* const kAwkwardText =
    "spaces and \"double\" 'single' quotes, commas; back\\slash\nsecond line\ttab, "
    "unicode: \xc2\xb5s \xe2\x80\x94 \xe9\x95\xb7\xe3\x81\x84 \xf0\x9f\x9a\x80";

RunRecord sample_record(int i) {
  RunRecord record;
  record.set("run_key", fmt::format("mixer=flash seq={} ranks=2", 1024 << i));
  record.set("pass", std::string(i % 2 == 0 ? "fwd" : "bwd"));
  record.set("index", std::int64_t{i});
  record.set("median_s", 0.1 + 0.2 * i);
  record.set("int_max", std::numeric_limits<std::int64_t>::max());
  record.set("int_min", std::numeric_limits<std::int64_t>::min());
  record.set("denormal", std::numeric_limits<double>::denorm_min());
  record.set("huge", std::numeric_limits<double>::max());
  record.set("negative_zero", -0.0);
  record.set("whole", 4096.0);
  record.set("third", 1.0 / 3.0);
  record.set("message", std::string(kAwkwardText));
  record.set("empty", std::string());
  return record;
}

std::vector<RunRecord> sample_records(int count) {
  std::vector<RunRecord> records;
  for (int i = 0; i < count; ++i) {
    records.push_back(sample_record(i));
  }
  return records;
}

// Same fields in the same order, same kinds, integers and strings equal, doubles bit for bit.
void expect_identical(const std::vector<RunRecord>& expected, const std::vector<RunRecord>& got) {
  ASSERT_EQ(expected.size(), got.size());
  for (std::size_t r = 0; r < expected.size(); ++r) {
    const auto& a = expected[r].fields();
    const auto& b = got[r].fields();
    ASSERT_EQ(a.size(), b.size()) << "record " << r;
    for (std::size_t f = 0; f < a.size(); ++f) {
      EXPECT_EQ(a[f].first, b[f].first) << "record " << r;
      ASSERT_EQ(a[f].second.index(), b[f].second.index()) << a[f].first;
      if (const auto* x = std::get_if<double>(&a[f].second)) {
        const double y = std::get<double>(b[f].second);
        EXPECT_EQ(std::memcmp(x, &y, sizeof y), 0) << a[f].first << ": " << *x << " vs " << y;
      } else {
        EXPECT_EQ(a[f].second, b[f].second) << a[f].first;
      }
    }
  }
}

void expect_user_error_naming(const std::function<void()>& action, const std::string& path) {
  try {
    action();
    ADD_FAILURE() << "no error for " << path;
  } catch (const UserError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

TEST_F(ResultsFileTest, Hdf5RoundTripIsExact) {
  const std::vector<RunRecord> records = sample_records(5);
  const std::string file = path("results.h5");
  write_results(file, records);
  EXPECT_TRUE(is_results_file(file));
  expect_identical(records, read_results(file));
}

TEST_F(ResultsFileTest, Hdf5KeepsNotANumber) {
  RunRecord record;
  record.set("max_rel_err", std::numeric_limits<double>::quiet_NaN());
  const std::string file = path("nan.h5");
  write_results(file, {record});
  expect_identical({record}, read_results(file));
}

TEST_F(ResultsFileTest, EmptySetRoundTrips) {
  const std::string file = path("empty.h5");
  write_results(file, {});
  EXPECT_TRUE(is_results_file(file));
  EXPECT_TRUE(read_results(file).empty());
}

TEST_F(ResultsFileTest, JsonLinesRoundTripIsExact) {
  const std::vector<RunRecord> records = sample_records(4);
  const std::string file = path("results.jsonl");
  export_json(records, file);
  const std::string text = read_bytes(file);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 4);
  EXPECT_TRUE(is_results_file(file));
  expect_identical(records, read_results(file));
}

TEST_F(ResultsFileTest, JsonLinesSkipBlankLinesAndNameBadLines) {
  const std::string file = path("stream.jsonl");
  write_bytes(file, "\n{\"mixer\": \"flash\", \"seq\": 1024}\n\n{\"mixer\": \"linear\"}\n");
  const std::vector<RunRecord> records = read_results(file);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[1].text("mixer"), "linear");
  write_bytes(file, "{\"mixer\": \"flash\"}\n{\"mixer\": \n");
  expect_user_error_naming([&] { read_results(file); }, file + ":2");
}

TEST_F(ResultsFileTest, CsvHasEveryFieldQuotedWhereNeeded) {
  RunRecord first;
  first.set("mixer", std::string("flash"));
  first.set("seq", std::int64_t{4096});
  first.set("median_s", 0.25);
  RunRecord second;
  second.set("mixer", std::string("lsh"));
  second.set("message", std::string("bad \"bucket\", retried\nthen failed"));
  second.set("median_s", 0.1);
  const std::string file = path("results.csv");
  export_csv({first, second}, file);
  EXPECT_EQ(read_bytes(file),
            "mixer,seq,median_s,message\n"
            "flash,4096,0.25,\n"
            "lsh,,0.1,\"bad \"\"bucket\"\", retried\nthen failed\"\n");
}

TEST_F(ResultsFileTest, SecondWriteReplacesTheFirstAndLeavesNoTemporary) {
  const std::string file = path("results.h5");
  write_results(file, sample_records(3));
  const std::vector<RunRecord> second = sample_records(7);
  write_results(file, second);
  expect_identical(second, read_results(file));
  EXPECT_FALSE(fs::exists(file + ".tmp"));
}

TEST_F(ResultsFileTest, RefusesToOverwriteAFileThatIsNotResults) {
  const std::string file = path("notes.txt");
  const std::string bytes = "my notes, not results\n\x01\x02\x03";
  write_bytes(file, bytes);
  expect_user_error_naming([&] { write_results(file, sample_records(1)); }, file);
  EXPECT_EQ(read_bytes(file), bytes);
  EXPECT_FALSE(fs::exists(file + ".tmp"));
}

// An HDF5 file that is not a longseq results file: one group, no format attribute.
void write_foreign_hdf5(const std::string& file) {
  const Hdf5Id handle = HDF5_ID(H5Fcreate(file.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  const Hdf5Id group =
      HDF5_ID(H5Gcreate2(handle.get(), "data", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
}

TEST_F(ResultsFileTest, RefusesToOverwriteAnotherHdf5File) {
  const std::string file = path("weights.h5");
  write_foreign_hdf5(file);
  const std::string bytes = read_bytes(file);
  expect_user_error_naming([&] { write_results(file, sample_records(1)); }, file);
  EXPECT_EQ(read_bytes(file), bytes);
}

TEST_F(ResultsFileTest, ReadErrorsAreOneLineNamingThePath) {
  const std::string missing = path("missing.h5");
  expect_user_error_naming([&] { read_results(missing); }, missing);
  EXPECT_FALSE(is_results_file(missing));

  const std::string garbage = path("garbage.h5");
  std::string bytes;
  for (int i = 0; i < 4096; ++i) {
    bytes += static_cast<char>((i * 7919 + 13) % 251);
  }
  write_bytes(garbage, bytes);
  expect_user_error_naming([&] { read_results(garbage); }, garbage);
  expect_user_error_naming([&] { is_results_file(garbage); }, garbage);

  const std::string foreign = path("foreign.h5");
  write_foreign_hdf5(foreign);
  expect_user_error_naming([&] { read_results(foreign); }, foreign);
  expect_user_error_naming([&] { is_results_file(foreign); }, foreign);

  // A results file cut short, as a copy interrupted part-way would leave it.
  const std::string results = path("results.h5");
  write_results(results, sample_records(20));
  const std::string whole = read_bytes(results);
  const std::string cut = path("cut.h5");
  write_bytes(cut, whole.substr(0, whole.size() / 2));
  expect_user_error_naming([&] { read_results(cut); }, cut);

  expect_user_error_naming([&] { read_results(dir_.string()); }, dir_.string());
}

TEST_F(ResultsFileTest, StaleTemporaryDoesNotBreakReadingOrWriting) {
  const std::string file = path("results.h5");
  const std::vector<RunRecord> first = sample_records(2);
  write_results(file, first);
  write_bytes(file + ".tmp", "half of a file from a writer that was killed");
  expect_identical(first, read_results(file));
  const std::vector<RunRecord> second = sample_records(3);
  write_results(file, second);
  expect_identical(second, read_results(file));
  EXPECT_FALSE(fs::exists(file + ".tmp"));
}

TEST_F(ResultsFileTest, MissingFolderIsAUserError) {
  const std::string file = path("no/such/folder/results.h5");
  expect_user_error_naming([&] { write_results(file, sample_records(1)); }, file);
}

bool python_has(const char* module) {
  if (::access("/usr/bin/python3", X_OK) != 0) {
    return false;
  }
  return run_process({"/usr/bin/python3", "-c", fmt::format("import {}", module)}).exit_code == 0;
}

TEST_F(ResultsFileTest, H5pyReadsTheFileAndItsAttributes) {
  if (!python_has("h5py")) {
    GTEST_SKIP() << "/usr/bin/python3 with h5py is not available";
  }
  const std::string file = path("results.h5");
  write_results(file, sample_records(3));
  const char* script = R"(
import sys, h5py
f = h5py.File(sys.argv[1], "r")
print(f.attrs["format"].decode() if isinstance(f.attrs["format"], bytes) else f.attrs["format"])
runs = f["runs"]
print(len(runs))
a = runs["000002"].attrs
print(list(a.keys())[:4])
print(repr(float(a["median_s"])), int(a["int_min"]), int(a["int_max"]))
m = a["message"]
print((m.decode("utf-8") if isinstance(m, bytes) else m) == sys.argv[2])
)";
  const ProcessOutcome run = run_process({"/usr/bin/python3", "-c", script, file, kAwkwardText});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(run.output, fmt::format("longseq-results-1\n3\n['run_key', 'pass', 'index', "
                                    "'median_s']\n{} -9223372036854775808 9223372036854775807\n"
                                    "True\n",
                                    0.1 + 0.2 * 2));
}

// A writer killed at any moment leaves PATH with either the previous or the new complete records.
TEST_F(ResultsFileTest, KilledWriterLeavesTheOldOrTheNewFile) {
  const std::string file = path("results.h5");
  const std::vector<RunRecord> small = sample_records(300);
  const std::vector<RunRecord> large = sample_records(450);
  write_results(file, small);
  int killed_mid_write = 0;
  for (int attempt = 0; attempt < 25; ++attempt) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      try {
        for (;;) {
          write_results(file, large);
          write_results(file, small);
        }
      } catch (...) {
      }
      ::_exit(3);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2 + (attempt * 7) % 40));
    ASSERT_EQ(::kill(child, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the writer stopped by itself: " << status;
    killed_mid_write += fs::exists(file + ".tmp") ? 1 : 0;
    const std::vector<RunRecord> found = read_results(file);
    ASSERT_TRUE(found.size() == small.size() || found.size() == large.size()) << found.size();
    expect_identical(found.size() == small.size() ? small : large, found);
  }
  EXPECT_GT(killed_mid_write, 0) << "no kill landed while a file was being written";
  write_results(file, small);
  expect_identical(small, read_results(file));
}

TEST(Hdf5Check, FailingCallThrowsWithCallTextAndStackWithoutPrinting) {
  testing::internal::CaptureStderr();
  try {
    const Hdf5Id file = HDF5_ID(H5Fopen("no-such-file.h5", H5F_ACC_RDONLY, H5P_DEFAULT));
    ADD_FAILURE() << "opened a missing file";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("H5Fopen(\"no-such-file.h5\""), std::string::npos) << message;
    EXPECT_NE(message.find("unable to open file"), std::string::npos) << message;
    EXPECT_NE(message.find("results_file_test.cpp:"), std::string::npos) << message;
  }
  try {
    HDF5_CHECK(H5Gclose(H5I_INVALID_HID));
    ADD_FAILURE() << "closed an invalid id";
  } catch (const Error& e) {
    // The call as written, not after macro expansion (H5I_INVALID_HID is a macro).
    EXPECT_NE(std::string(e.what()).find("`H5Gclose(H5I_INVALID_HID)`"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}

TEST(Hdf5Check, IdsCloseOnceAndMove) {
  Hdf5Id space = HDF5_ID(H5Screate(H5S_SCALAR));
  const hid_t raw = space.get();
  EXPECT_GT(H5Iis_valid(raw), 0);
  Hdf5Id moved = std::move(space);
  EXPECT_FALSE(space.valid());  // NOLINT(bugprone-use-after-move): moved-from state is defined
  EXPECT_EQ(moved.get(), raw);
  moved = Hdf5Id();
  EXPECT_EQ(H5Iis_valid(raw), 0);
  H5Eclear2(H5E_DEFAULT);
  HDF5_CHECK(H5Iis_valid(raw));  // false (0) is a success status
}

}  // namespace
}  // namespace longseq
