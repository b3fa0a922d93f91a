// Suite specs (suites/spec/suite_spec.h):
//   - every file under specs/bad/ fails to load with the error its first line announces,
//     "# expect: LINE:COL: TEXT": the message starts with "<path>:LINE:COL: " and contains TEXT;
//   - the files under specs/good/ load with the expected runs, in the expected order, with the
//     expected fields, defaults, limits, tolerances and Slurm settings;
//   - run keys are stable (one is spelled out in full) and distinct; FLOP and memory predictions
//     follow their definitions; the plan is readable in 100 columns;
//   - the suites under configs/suites/ load.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "models/mixer_registry.h"
#include "runtime/error.h"
#include "suites/spec/suite_spec.h"

namespace longseq {
namespace {

namespace fs = std::filesystem;

const fs::path kSpecs = LONGSEQ_TEST_SPECS_DIR;
const fs::path kConfigs = LONGSEQ_CONFIGS_DIR;

std::string good(const std::string& name) { return (kSpecs / "good" / (name + ".yaml")).string(); }

// The message of the UserError that loading `path` throws ("" if it loads).
std::string load_error(const std::string& path) {
  try {
    (void)load_suite(path);
  } catch (const UserError& error) {
    return error.what();
  }
  return "";
}

std::vector<std::string> bad_files() {
  std::vector<std::string> names;
  for (const fs::directory_entry& entry : fs::directory_iterator(kSpecs / "bad")) {
    if (entry.path().extension() == ".yaml") {
      names.push_back(entry.path().stem().string());
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

// ---- bad files ----

class BadSpecTest : public ::testing::TestWithParam<std::string> {};

TEST_P(BadSpecTest, FailsWithTheAnnouncedError) {
  const std::string path = (kSpecs / "bad" / (GetParam() + ".yaml")).string();
  std::ifstream file(path);
  std::string first_line;
  ASSERT_TRUE(std::getline(file, first_line)) << path;
  const std::string marker = "# expect: ";
  ASSERT_EQ(first_line.rfind(marker, 0), 0u) << path << " lacks its '# expect: ' line";
  const std::string expectation = first_line.substr(marker.size());
  // LINE:COL: TEXT
  const std::size_t second_colon = expectation.find(':', expectation.find(':') + 1);
  ASSERT_NE(second_colon, std::string::npos) << first_line;
  const std::string position = expectation.substr(0, second_colon);
  const std::string text = expectation.substr(second_colon + 2);

  const std::string message = load_error(path);
  ASSERT_FALSE(message.empty()) << path << " loaded without error";
  EXPECT_EQ(message.rfind(path + ":" + position + ": ", 0), 0u)
      << "expected position " << position << ", got: " << message;
  EXPECT_NE(message.find(text), std::string::npos) << "expected '" << text << "' in: " << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << "not one line: " << message;
}

INSTANTIATE_TEST_SUITE_P(Specs, BadSpecTest, ::testing::ValuesIn(bad_files()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

TEST(BadSpecs, ThereAreAtLeastThirty) { EXPECT_GE(bad_files().size(), 30u); }

TEST(BadSpecs, MissingFileNamesThePath) {
  const std::string path = (kSpecs / "no-such-suite.yaml").string();
  const std::string message = load_error(path);
  EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << message;
  EXPECT_NE(message.find("cannot open"), std::string::npos) << message;
}

TEST(BadSpecs, ZeroByteFileIsEmpty) {
  const fs::path path = fs::temp_directory_path() / "longseq-spec-test-empty.yaml";
  { std::ofstream file(path, std::ios::trunc); }
  const std::string message = load_error(path.string());
  fs::remove(path);
  EXPECT_EQ(message.rfind(path.string() + ":1:1: ", 0), 0u) << message;
  EXPECT_NE(message.find("empty"), std::string::npos) << message;
}

// ---- good files ----

TEST(GoodSpecs, DefaultsFillEveryField) {
  const Suite suite = load_suite(good("defaults"));
  EXPECT_EQ(suite.name, "smallest");
  EXPECT_EQ(suite.path, good("defaults"));
  ASSERT_EQ(suite.runs.size(), 1u);
  const SuiteRun& run = suite.runs[0];
  EXPECT_EQ(run.index, 0u);
  EXPECT_EQ(run.ranks, 1);
  const BenchConfig& config = run.bench;
  EXPECT_EQ(config.mixer, "flash");
  EXPECT_EQ(config.seq, 1024);
  EXPECT_EQ(config.layout, "contiguous");
  EXPECT_EQ(config.pass, "both");
  EXPECT_EQ(config.reps, 3);
  EXPECT_EQ(config.warmup, 1);
  EXPECT_FALSE(config.check);
  EXPECT_EQ(config.seed, 1u);
  const MixerOptions& options = config.mixer_options;
  const MixerOptions defaults;
  EXPECT_EQ(options.seed, 1u);
  EXPECT_EQ(options.batch, defaults.batch);
  EXPECT_EQ(options.heads, defaults.heads);
  EXPECT_EQ(options.kv_heads, defaults.heads);
  EXPECT_EQ(options.head_dim, defaults.head_dim);
  EXPECT_EQ(options.causal, defaults.causal);
  EXPECT_EQ(options.strategy, "ring");  // flash's first
  EXPECT_EQ(options.dtype, DType::f32);
  EXPECT_EQ(options.device, Device::cpu);
  EXPECT_EQ(options.features, defaults.features);
  EXPECT_EQ(options.state_size, defaults.state_size);
  EXPECT_EQ(options.momentum, defaults.momentum);
  EXPECT_EQ(suite.limits.timeout_s, 0);
  EXPECT_EQ(suite.limits.memory_bytes, 0);
  EXPECT_EQ(suite.tolerances.time, Tolerances{}.time);
  EXPECT_TRUE(suite.tolerances.normalise_by_yardstick);
  EXPECT_EQ(suite.slurm.partition, "");
  EXPECT_EQ(suite.slurm.time, "01:00:00");
  EXPECT_EQ(suite.excluded_runs, 0u);
  EXPECT_EQ(suite.duplicate_runs, 0u);
}

TEST(GoodSpecs, MatrixOrderIsAsWrittenWithTheLastAxisFastest) {
  const Suite suite = load_suite(good("lists_and_scalars"));
  EXPECT_EQ(suite.description, "Expansion order of a matrix");
  ASSERT_EQ(suite.runs.size(), 12u);
  std::size_t i = 0;
  for (const std::string mixer : {"flash", "linear"}) {
    for (const std::int64_t seq : {256, 512, 1024}) {
      for (const int ranks : {1, 2}) {
        const SuiteRun& run = suite.runs[i];
        SCOPED_TRACE(run.key);
        EXPECT_EQ(run.index, i);
        EXPECT_EQ(run.bench.mixer, mixer);
        EXPECT_EQ(run.bench.seq, seq);
        EXPECT_EQ(run.ranks, ranks);
        EXPECT_EQ(run.bench.layout, "zigzag");
        EXPECT_EQ(run.bench.reps, 2);
        EXPECT_EQ(run.bench.warmup, 0);
        EXPECT_TRUE(run.bench.check);
        EXPECT_TRUE(run.bench.mixer_options.causal);
        EXPECT_EQ(run.bench.mixer_options.heads, 4);
        EXPECT_EQ(run.bench.mixer_options.head_dim, 16);
        EXPECT_EQ(run.bench.mixer_options.strategy, mixer == "flash" ? "ring" : "chain");
        ++i;
      }
    }
  }
}

TEST(GoodSpecs, IncludeEntriesFollowTheMatrixOverTheDefaults) {
  const Suite suite = load_suite(good("include"));
  ASSERT_EQ(suite.runs.size(), 4u);
  EXPECT_EQ(suite.runs[0].bench.mixer, "softmax");
  EXPECT_EQ(suite.runs[1].bench.mixer, "s4d");
  EXPECT_EQ(suite.runs[1].bench.seq, 128);
  const SuiteRun& long_run = suite.runs[2];
  EXPECT_EQ(long_run.bench.mixer, "s4d");
  EXPECT_EQ(long_run.bench.seq, 65536);
  EXPECT_EQ(long_run.ranks, 4);
  EXPECT_EQ(long_run.bench.mixer_options.state_size, 16);
  EXPECT_EQ(long_run.bench.mixer_options.batch, 2);  // from defaults
  EXPECT_TRUE(long_run.bench.mixer_options.causal);
  const SuiteRun& performer = suite.runs[3];
  EXPECT_EQ(performer.bench.mixer, "performer");
  EXPECT_EQ(performer.bench.seq, 128);
  EXPECT_EQ(performer.bench.pass, "fwd");
  EXPECT_EQ(performer.bench.seed, 9u);
  EXPECT_EQ(performer.bench.mixer_options.seed, 9u);
  EXPECT_EQ(performer.bench.mixer_options.features, 32);
  EXPECT_EQ(performer.ranks, 1);
  EXPECT_TRUE(performer.bench.check);
  EXPECT_FALSE(suite.runs[0].bench.check);
  EXPECT_FALSE(long_run.bench.check);
}

TEST(GoodSpecs, ExcludeDropsMatchingMatrixRuns) {
  const Suite suite = load_suite(good("exclude"));
  const std::vector<std::string> expected = {
      "flash ring 256",   "flash ring 4096",   "flash allgather 256",  "flash allgather 4096",
      "linear chain 256", "linear chain 4096", "linear allgather 256", "linear allgather 4096",
      "s4d chain 4096",   "s4d allgather 4096"};
  ASSERT_EQ(suite.runs.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const BenchConfig& config = suite.runs[i].bench;
    EXPECT_EQ(config.mixer + " " + config.mixer_options.strategy + " " + std::to_string(config.seq),
              expected[i]);
  }
  EXPECT_EQ(suite.excluded_runs, 8u);
}

TEST(GoodSpecs, LimitsWithUnitsAndTolerances) {
  const Suite suite = load_suite(good("limits_units"));
  EXPECT_DOUBLE_EQ(suite.limits.timeout_s, 90.5);
  EXPECT_EQ(suite.limits.memory_bytes, std::int64_t{3} << 29);  // 1.5 GiB
  EXPECT_DOUBLE_EQ(suite.tolerances.time, 0.25);
  EXPECT_FALSE(suite.tolerances.normalise_by_yardstick);
  EXPECT_DOUBLE_EQ(suite.tolerances.memory, 0.05);
  EXPECT_DOUBLE_EQ(suite.tolerances.error, 2.0e-5);

  const Suite bytes = load_suite(good("memory_bytes"));
  EXPECT_EQ(bytes.limits.memory_bytes, 1048576);
  EXPECT_DOUBLE_EQ(bytes.limits.timeout_s, 30);
}

TEST(GoodSpecs, SlurmSectionAndGpuRunsPlanWithoutAGpu) {
  const Suite suite = load_suite(good("slurm"));
  EXPECT_EQ(suite.name, "cluster.study_1");
  EXPECT_EQ(suite.description, "Flash and linear attention on GPUs, in bf16.\n");
  EXPECT_EQ(suite.slurm.partition, "gpu");
  EXPECT_EQ(suite.slurm.account, "proj-17");
  EXPECT_EQ(suite.slurm.time, "2-00:00:00");
  EXPECT_EQ(suite.slurm.nodes, 1);
  EXPECT_EQ(suite.slurm.gpus_per_task, 1);
  EXPECT_EQ(suite.slurm.cpus_per_task, 8);
  EXPECT_TRUE(suite.slurm.array);
  ASSERT_EQ(suite.runs.size(), 4u);
  for (const SuiteRun& run : suite.runs) {
    EXPECT_EQ(run.bench.mixer_options.device, Device::cuda);
    EXPECT_EQ(run.bench.mixer_options.dtype, DType::bf16);
  }
}

TEST(GoodSpecs, DuplicatesKeepTheFirst) {
  const Suite suite = load_suite(good("duplicates"));
  ASSERT_EQ(suite.runs.size(), 3u);
  EXPECT_EQ(suite.runs[0].bench.mixer_options.kv_heads, 4);
  EXPECT_EQ(suite.runs[1].bench.mixer_options.kv_heads, 2);
  EXPECT_EQ(suite.runs[2].bench.mixer, "softmax");
  EXPECT_EQ(suite.runs[2].index, 2u);
  EXPECT_EQ(suite.duplicate_runs, 3u);
}

// ---- keys ----

TEST(RunKeys, AreSpelledOutInTheDocumentedOrder) {
  const Suite suite = load_suite(good("defaults"));
  EXPECT_EQ(run_key(suite.runs[0]),
            "mixer=flash seq=1024 batch=1 heads=8 kv_heads=8 head_dim=64 causal=0 ranks=1 "
            "layout=contiguous strategy=ring dtype=fp32 device=cpu pass=both seed=1 features=256 "
            "redraw_interval=0 state_size=64 local_chunk=0 momentum=0.5 "
            "momentum_step=0.80000000000000004 reps=3 warmup=1 check=0");
  EXPECT_EQ(suite.runs[0].key, run_key(suite.runs[0]));
}

TEST(RunKeys, AreStableAcrossLoadsAndDistinctWithinASuite) {
  for (const std::string name : {"lists_and_scalars", "include", "exclude", "slurm"}) {
    SCOPED_TRACE(name);
    const Suite first = load_suite(good(name));
    const Suite second = load_suite(good(name));
    ASSERT_EQ(first.runs.size(), second.runs.size());
    std::set<std::string> keys;
    for (std::size_t i = 0; i < first.runs.size(); ++i) {
      EXPECT_EQ(first.runs[i].key, second.runs[i].key);
      EXPECT_EQ(first.runs[i].key, run_key(first.runs[i]));
      keys.insert(first.runs[i].key);
    }
    EXPECT_EQ(keys.size(), first.runs.size());
  }
}

TEST(RunKeys, ChangeWithEveryField) {
  const SuiteRun base = load_suite(good("defaults")).runs[0];
  std::vector<SuiteRun> variants(8, base);
  variants[0].ranks = 2;
  variants[1].bench.seq = 2048;
  variants[2].bench.mixer_options.causal = true;
  variants[3].bench.mixer_options.dtype = DType::bf16;
  variants[4].bench.mixer_options.momentum = 0.25;
  variants[5].bench.reps = 7;
  variants[6].bench.layout = "striped";
  variants[7].bench.seed = 5;
  std::set<std::string> keys = {run_key(base)};
  for (const SuiteRun& run : variants) {
    keys.insert(run_key(run));
  }
  EXPECT_EQ(keys.size(), variants.size() + 1);
}

// ---- predictions and plan ----

TEST(Predictions, FlopsAreTheMeasuredPassesOfTheMixer) {
  const Suite suite = load_suite(good("include"));
  for (const SuiteRun& run : suite.runs) {
    SCOPED_TRACE(run.key);
    const auto mixer = make_mixer(run.bench.mixer, run.bench.mixer_options);
    const double forward = mixer->forward_flops(run.bench.seq);
    const double backward = mixer->backward_flops(run.bench.seq);
    const double expected = run.bench.pass == "fwd" ? forward : forward + backward;
    EXPECT_DOUBLE_EQ(run.predicted_flops, expected);
    EXPECT_GT(run.predicted_flops, 0);
  }
}

TEST(Predictions, MemoryIsTheShardsOfTheMeasuredTensors) {
  // flash, seq 1024, 1 rank, both passes: q, k, v, out and their gradients, fp32, no parameters.
  const Suite suite = load_suite(good("defaults"));
  const std::int64_t tensor = std::int64_t{1} * 8 * 1024 * 64 * 4;
  EXPECT_EQ(suite.runs[0].predicted_memory_bytes, 2 * 4 * tensor);

  // lists_and_scalars: heads 4, head_dim 16, zigzag; seq 1024 on 2 ranks holds 512 each.
  const Suite lists = load_suite(good("lists_and_scalars"));
  const SuiteRun& run = lists.runs[5];
  ASSERT_EQ(run.bench.seq, 1024);
  ASSERT_EQ(run.ranks, 2);
  EXPECT_EQ(run.predicted_memory_bytes, 2 * 4 * (std::int64_t{4} * 512 * 16 * 4));

  // A forward-only run counts no gradients; parameters count once.
  const Suite include = load_suite(good("include"));
  const SuiteRun& performer = include.runs[3];
  ASSERT_EQ(performer.bench.pass, "fwd");
  EXPECT_EQ(performer.predicted_memory_bytes, 4 * (std::int64_t{2} * 2 * 128 * 8 * 4));
}

TEST(Plan, ListsEveryRunWithinOneHundredColumns) {
  const Suite suite = load_suite(good("exclude"));
  const std::string plan = plan_text(suite);
  std::istringstream lines(plan);
  std::string line;
  std::size_t run_lines = 0;
  while (std::getline(lines, line)) {
    EXPECT_LE(line.size(), 100u) << line;
    run_lines += line.find(" s4d ") != std::string::npos ||
                         line.find(" flash ") != std::string::npos ||
                         line.find(" linear ") != std::string::npos
                     ? 1
                     : 0;
  }
  EXPECT_EQ(run_lines, suite.runs.size());
  EXPECT_NE(plan.find("total: 10 runs"), std::string::npos) << plan;
  EXPECT_NE(plan.find("8 excluded"), std::string::npos) << plan;
  EXPECT_NE(plan.find("TFLOP"), std::string::npos) << plan;
}

// ---- the project's suites ----

std::vector<std::string> mixers_of(const Suite& suite) {
  std::set<std::string> names;
  for (const SuiteRun& run : suite.runs) {
    names.insert(run.bench.mixer);
  }
  return {names.begin(), names.end()};
}

std::vector<std::string> sorted_registered_mixers() {
  std::vector<std::string> names = registered_mixers();
  std::sort(names.begin(), names.end());
  return names;
}

std::set<int> rank_counts_of(const Suite& suite) {
  std::set<int> counts;
  for (const SuiteRun& run : suite.runs) {
    counts.insert(run.ranks);
  }
  return counts;
}

TEST(ProjectSuites, QuickstartCoversEveryMixerOnOneTwoAndFourRanks) {
  const Suite suite = load_suite((kConfigs / "suites" / "quickstart.yaml").string());
  EXPECT_EQ(suite.name, "quickstart");
  EXPECT_EQ(mixers_of(suite), sorted_registered_mixers());
  EXPECT_EQ(rank_counts_of(suite), (std::set<int>{1, 2, 4}));
  std::int64_t longest = 0;
  for (const SuiteRun& run : suite.runs) {
    EXPECT_EQ(run.bench.mixer_options.device, Device::cpu);
    longest = std::max(longest, run.bench.seq);
  }
  EXPECT_GE(longest, 1 << 20);
}

TEST(ProjectSuites, ScalingStudyIsForGpus) {
  const Suite suite = load_suite((kConfigs / "suites" / "scaling-1m.yaml").string());
  EXPECT_FALSE(suite.runs.empty());
  std::int64_t longest = 0;
  for (const SuiteRun& run : suite.runs) {
    EXPECT_EQ(run.bench.mixer_options.device, Device::cuda);
    EXPECT_GE(run.bench.seq, 16384);
    longest = std::max(longest, run.bench.seq);
  }
  EXPECT_EQ(longest, 1 << 20);
  EXPECT_EQ(suite.slurm.gpus_per_task, 1);
  EXPECT_GT(suite.limits.timeout_s, 0);
  EXPECT_EQ(*rank_counts_of(suite).rbegin(), 8);
}

TEST(ProjectSuites, CiRegressionIsSmallAndChecked) {
  const Suite suite = load_suite((kConfigs / "suites" / "ci-regression.yaml").string());
  EXPECT_EQ(mixers_of(suite), sorted_registered_mixers());
  EXPECT_EQ(rank_counts_of(suite), (std::set<int>{1, 2}));
  for (const SuiteRun& run : suite.runs) {
    EXPECT_TRUE(run.bench.check);
    EXPECT_LE(run.bench.seq, 4096);
  }
  EXPECT_DOUBLE_EQ(suite.tolerances.time, 1.0);
  EXPECT_TRUE(suite.tolerances.normalise_by_yardstick);
  EXPECT_DOUBLE_EQ(suite.tolerances.memory, 0.0);
  EXPECT_DOUBLE_EQ(suite.tolerances.error, 1e-4);
}

}  // namespace
}  // namespace longseq
