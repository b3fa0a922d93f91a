#include "suites/runner/run_records.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <ctime>

#include "runtime/device.h"
#include "runtime/dtype.h"
#include "suites/build_info.h"

namespace longseq {

namespace {

std::int64_t as_int(bool value) { return value ? 1 : 0; }

std::string host_name() {
  char name[256] = {};
  return gethostname(name, sizeof(name) - 1) == 0 ? std::string(name) : std::string("unknown");
}

std::string utc_now() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  return fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", utc);
}

// Everything that does not depend on the outcome.
RunRecord base_record(const Suite& suite, const SuiteRun& run, std::string_view pass) {
  const BenchConfig& bench = run.bench;
  const MixerOptions& options = bench.mixer_options;
  RunRecord record;
  record.set("suite", suite.name);
  record.set("run_key", run.key);
  record.set("index", static_cast<std::int64_t>(run.index));
  record.set("pass", std::string(pass));
  record.set("mixer", bench.mixer);
  record.set("seq", bench.seq);
  record.set("batch", options.batch);
  record.set("heads", options.heads);
  record.set("kv_heads", options.kv_heads > 0 ? options.kv_heads : options.heads);
  record.set("head_dim", options.head_dim);
  record.set("causal", as_int(options.causal));
  record.set("ranks", std::int64_t{run.ranks});
  record.set("layout", bench.layout);
  record.set("strategy", options.strategy);
  record.set("dtype", std::string(dtype_name(options.dtype)));
  record.set("device", std::string(device_name(options.device)));
  record.set("reps", std::int64_t{bench.reps});
  record.set("warmup", std::int64_t{bench.warmup});
  record.set("seed", static_cast<std::int64_t>(bench.seed));
  record.set("check", as_int(bench.check));
  record.set("features", options.features);
  record.set("redraw_interval", options.redraw_interval);
  record.set("state_size", options.state_size);
  record.set("local_chunk", options.local_chunk);
  record.set("momentum", options.momentum);
  record.set("momentum_step", options.momentum_step);
  record.set("status", std::string("ok"));
  record.set("message", std::string());
  record.set("git_commit", std::string(kBuildGitCommit));
  record.set("compiler", std::string(kBuildCompiler));
  record.set("cxx_flags", std::string(kBuildCxxFlags));
  record.set("cuda_architectures", std::string(kBuildCudaArchitectures));
  record.set("hostname", host_name());
  record.set("cpu_model", cpu_description());
  record.set("cpu_cores", static_cast<std::int64_t>(sysconf(_SC_NPROCESSORS_ONLN)));
  record.set("gpu", cuda_device_description());
  record.set("timeout_s", suite.limits.timeout_s);
  record.set("memory_limit_bytes", suite.limits.memory_bytes);
  record.set("tolerance_time", suite.tolerances.time);
  record.set("tolerance_memory", suite.tolerances.memory);
  record.set("tolerance_error", suite.tolerances.error);
  record.set("normalise",
             std::string(suite.tolerances.normalise_by_yardstick ? "yardstick" : "none"));
  return record;
}

}  // namespace

std::vector<RunRecord> success_records(const Suite& suite, const SuiteRun& run,
                                       const std::vector<BenchResult>& results, int threads) {
  std::vector<RunRecord> records;
  for (const BenchResult& result : results) {
    RunRecord record = base_record(suite, run, result.pass);
    record.set("threads", std::int64_t{threads});
    record.set("median_s", result.median_s);
    record.set("spread", result.spread);
    record.set("flops", result.gflops * 1e9 * result.median_s);
    record.set("gflops", result.gflops);
    record.set("flop_convention", result.flop_convention);
    record.set("yardstick_name", fmt::format("{} n={}", result.yardstick.name, result.yardstick.n));
    record.set("yardstick_gflops", result.yardstick.gflops);
    record.set("yardstick_ratio",
               result.yardstick.gflops > 0 ? result.gflops / result.yardstick.gflops : 0.0);
    record.set("peak_mem_bytes", result.peak_mem_bytes);
    record.set("extra_mem_bytes", result.extra_mem_bytes);
    record.set("resident_extra_bytes", result.resident_extra_bytes);
    record.set("bytes_sent", result.bytes_sent);
    record.set("overlap", result.overlap);
    record.set("compute_max_s", result.compute_max_s);
    record.set("compute_min_s", result.compute_min_s);
    if (result.max_rel_err) {
      record.set("max_rel_err", *result.max_rel_err);
    }
    record.set("finished_at", utc_now());
    records.push_back(std::move(record));
  }
  return records;
}

RunRecord failure_record(const Suite& suite, const SuiteRun& run, const std::string& message) {
  RunRecord record = base_record(suite, run, run.bench.pass);
  record.set("status", std::string("failed"));
  record.set("message", message);
  record.set("finished_at", utc_now());
  return record;
}

std::string measurement_key(const RunRecord& record) {
  return record.text("run_key") + " | " + record.text("pass");
}

}  // namespace longseq
