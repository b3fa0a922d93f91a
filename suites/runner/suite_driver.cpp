#include "suites/runner/suite_driver.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <thread>

#include "runtime/error.h"
#include "suites/results/results_file.h"
#include "suites/runner/child_process.h"
#include "suites/runner/run_records.h"
#include "suites/runner/suite_worker.h"
#include "suites/spec/suite_spec.h"

namespace longseq {

namespace {

using Clock = std::chrono::steady_clock;

// Set by SIGINT / SIGTERM (a person's Ctrl-C, Slurm's requeue): the worker jobs run in their own
// process groups, so the driver stops them itself before it exits. A signal handler can only
// reach a flag with static storage.
volatile std::sig_atomic_t stop_signal = 0;

void on_stop_signal(int signal) { stop_signal = signal; }

// Installs the handlers for one run_suite call and restores the previous ones after it.
class StopSignals {
 public:
  StopSignals() {
    stop_signal = 0;
    previous_interrupt_ = std::signal(SIGINT, on_stop_signal);
    previous_terminate_ = std::signal(SIGTERM, on_stop_signal);
  }
  ~StopSignals() {
    std::signal(SIGINT, previous_interrupt_);
    std::signal(SIGTERM, previous_terminate_);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  void (*previous_interrupt_)(int) = nullptr;
  void (*previous_terminate_)(int) = nullptr;
};

// Thrown out of the run loop when a stop signal arrived; run_suite turns it into 128 + signal.
struct Stopped {
  int signal;
};

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string duration_text(double seconds) {
  const long total = std::lround(seconds);
  if (total >= 3600) {
    return fmt::format("{}h{:02}m", total / 3600, (total / 60) % 60);
  }
  return fmt::format("{}m{:02}s", total / 60, total % 60);
}

// New complete lines of a file that another process appends to.
class LineFollower {
 public:
  explicit LineFollower(std::string path) : path_(std::move(path)) {}

  std::vector<std::string> next() {
    std::vector<std::string> lines;
    std::ifstream file(path_, std::ios::binary);
    if (!file) {
      return lines;
    }
    file.seekg(static_cast<std::streamoff>(offset_));
    std::string chunk((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    std::size_t begin = 0;
    for (std::size_t end = chunk.find('\n'); end != std::string::npos;
         end = chunk.find('\n', begin)) {
      lines.push_back(chunk.substr(begin, end - begin));
      begin = end + 1;
    }
    offset_ += begin;
    return lines;
  }

 private:
  std::string path_;
  std::size_t offset_ = 0;
};

// The worker's reason for a failed run, from its log: the last "suite worker: run I failed on
// rank R: MESSAGE" line for this run.
std::optional<std::string> failure_from_log(const std::string& log_path, std::size_t index) {
  std::ifstream log(log_path);
  const std::string prefix = fmt::format("{}{} failed on rank ", kWorkerFailurePrefix, index);
  std::optional<std::string> found;
  for (std::string line; std::getline(log, line);) {
    const std::size_t at = line.find(prefix);
    if (at != std::string::npos) {
      found = line.substr(at + std::string(kWorkerFailurePrefix).size());
    }
  }
  return found;
}

bool inside_slurm_job() { return std::getenv("SLURM_JOB_ID") != nullptr; }

// The command that starts a worker job of `ranks` ranks on `runs`.
std::vector<std::string> worker_command(const SuiteRunRequest& request, Launcher launcher,
                                        int ranks, int threads,
                                        const std::vector<std::size_t>& runs,
                                        const std::string& stream_path) {
  std::vector<std::string> argv;
  if (launcher == Launcher::srun) {
    argv = {"srun", "--mpi=pmix", "--kill-on-bad-exit=1", fmt::format("--ntasks={}", ranks)};
  } else if (ranks > 1) {
    argv = {"mpirun", "-np", std::to_string(ranks), "--oversubscribe", "--bind-to", "none"};
    if (geteuid() == 0) {
      argv.emplace_back("--allow-run-as-root");
    }
  }
  argv.insert(argv.end(), {request.executable, "--threads", std::to_string(threads), "suite",
                           "worker", request.suite_path, "--stream", stream_path, "--runs",
                           fmt::format("{}", fmt::join(runs, ","))});
  return argv;
}

struct Progress {
  Clock::time_point start = Clock::now();
  std::size_t total = 0;
  std::size_t finished = 0;
  double total_flops = 0;
  double finished_flops = 0;

  [[nodiscard]] std::string left() const {
    const double elapsed = seconds_since(start);
    if (finished_flops > 0 && total_flops > finished_flops) {
      return duration_text(elapsed * (total_flops - finished_flops) / finished_flops);
    }
    if (finished > 0 && total > finished) {
      return duration_text(elapsed * static_cast<double>(total - finished) /
                           static_cast<double>(finished));
    }
    return finished >= total ? "0m00s" : "?";
  }
};

std::string run_label(const SuiteRun& run) {
  return fmt::format("{} seq={} ranks={} {} {} {}", run.bench.mixer, run.bench.seq, run.ranks,
                     run.bench.layout, run.bench.mixer_options.strategy, run.bench.pass);
}

std::string outcome_text(const std::vector<RunRecord>& records) {
  std::string text;
  for (const RunRecord& record : records) {
    if (record.text("status") != "ok") {
      return "FAILED: " + record.text("message");
    }
    text += fmt::format("{}{} {:.4g} s ({:.2f}x yardstick)", text.empty() ? "" : ", ",
                        record.text("pass"), record.number("median_s"),
                        record.number("yardstick_ratio"));
  }
  return text;
}

// Everything one `suite run` works with.
class Driver {
 public:
  Driver(const SuiteRunRequest& request, const Suite& suite, std::vector<RunRecord> records,
         std::ostream& out)
      : request_(request), suite_(suite), records_(std::move(records)), out_(out) {}

  void run_group(int ranks, std::vector<std::size_t> runs) {
    const Launcher launcher = request_.launcher == Launcher::automatic
                                  ? (inside_slurm_job() ? Launcher::srun : Launcher::mpirun)
                                  : request_.launcher;
    const auto cores = static_cast<int>(std::max<long>(1, sysconf(_SC_NPROCESSORS_ONLN)));
    const int threads = request_.threads > 0 ? request_.threads : std::max(1, cores / ranks);
    const std::string stream_path = fmt::format("{}.np{}.stream", request_.results_path, ranks);
    const std::string log_path = fmt::format("{}.np{}.log", request_.results_path, ranks);
    while (!runs.empty()) {
      std::remove(stream_path.c_str());
      {
        std::ofstream log(log_path, std::ios::app);
        log << fmt::format("== worker job for runs {}\n", fmt::join(runs, ","));
      }
      ChildProcess job(worker_command(request_, launcher, ranks, threads, runs, stream_path),
                       {"OMP_WAIT_POLICY=passive", "OMPI_MCA_mpi_yield_when_idle=1"}, log_path);
      LineFollower stream(stream_path);
      // The run the job is on (between its start and done events); kNoRun between runs.
      constexpr std::size_t kNoRun = static_cast<std::size_t>(-1);
      std::size_t current = kNoRun;
      Clock::time_point current_start = Clock::now();
      std::vector<RunRecord> current_records;
      bool started_any = false;
      while (true) {
        const std::optional<int> exit_status = job.poll();
        for (const std::string& line : stream.next()) {
          const RunRecord item = record_from_json(line, stream_path);
          if (item.has("event")) {
            const auto index = static_cast<std::size_t>(item.integer("index"));
            if (item.text("event") == "start") {
              current = index;
              current_start = Clock::now();
              current_records.clear();
              started_any = true;
            } else {
              finish(index, current_records);
              std::erase(runs, index);
              current = kNoRun;
            }
          } else {
            current_records.push_back(item);
          }
        }
        if (stop_signal != 0) {
          job.stop();
          throw Stopped{stop_signal};
        }
        const double limit = suite_.limits.timeout_s;
        if (current != kNoRun && limit > 0 && seconds_since(current_start) > limit) {
          job.stop();
          fail(current, fmt::format("exceeded its time limit of {} s", limit), runs);
          break;
        }
        if (exit_status) {
          if (runs.empty()) {
            break;
          }
          if (current != kNoRun) {
            const std::optional<std::string> reason = failure_from_log(log_path, current);
            fail(current,
                 reason ? *reason
                        : fmt::format("its job exited with status {} (log: {})", *exit_status,
                                      log_path),
                 runs);
          } else if (!started_any) {
            // The job never ran anything: starting it again would fail the same way.
            const std::string why =
                fmt::format("the {}-rank job exited with status {} before its first run (log: {})",
                            ranks, *exit_status, log_path);
            for (const std::size_t index : std::vector<std::size_t>(runs)) {
              fail(index, why, runs);
            }
          }
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
    std::remove(stream_path.c_str());
  }

  [[nodiscard]] const std::vector<RunRecord>& records() const { return records_; }
  Progress& progress() { return progress_; }

 private:
  void fail(std::size_t index, const std::string& message, std::vector<std::size_t>& runs) {
    finish(index, {failure_record(suite_, suite_.runs[index], message)});
    std::erase(runs, index);
  }

  void finish(std::size_t index, std::vector<RunRecord> records) {
    const SuiteRun& run = suite_.runs[index];
    if (records.empty()) {
      records.push_back(failure_record(suite_, run, "the worker reported no result"));
    }
    std::erase_if(records_, [&](const RunRecord& r) { return r.text("run_key") == run.key; });
    records_.insert(records_.end(), records.begin(), records.end());
    write_results(request_.results_path, records_);
    ++progress_.finished;
    progress_.finished_flops += run.predicted_flops;
    const int width = static_cast<int>(std::to_string(progress_.total).size());
    out_ << fmt::format("[{:>{}}/{}] {:<48} {}  elapsed {}  left ~{}\n", progress_.finished, width,
                        progress_.total, run_label(run), outcome_text(records),
                        duration_text(seconds_since(progress_.start)), progress_.left());
    out_.flush();
  }

  const SuiteRunRequest& request_;
  const Suite& suite_;
  std::vector<RunRecord> records_;
  std::ostream& out_;
  Progress progress_;
};

std::string summary_table(const Suite& suite, const std::vector<RunRecord>& records) {
  std::set<std::string> keys;
  for (const SuiteRun& run : suite.runs) {
    keys.insert(run.key);
  }
  std::string text =
      fmt::format("{:<10} {:>8} {:>5} {:<10} {:<9} {:<4} {:>11} {:>9} {:>7} {:>10} {:>9}\n",
                  "mixer", "seq", "ranks", "layout", "strategy", "pass", "median_s", "GFLOP/s",
                  "x yard", "peak MiB", "max err");
  for (const RunRecord& r : records) {
    if (!keys.contains(r.text("run_key"))) {
      continue;
    }
    const std::string head =
        fmt::format("{:<10} {:>8} {:>5} {:<10} {:<9} {:<4}", r.text("mixer"), r.integer("seq"),
                    r.integer("ranks"), r.text("layout"), r.text("strategy"), r.text("pass"));
    if (r.text("status") != "ok") {
      text += fmt::format("{} FAILED: {}\n", head, r.text("message"));
      continue;
    }
    text += fmt::format(
        "{} {:>11.4g} {:>9.2f} {:>7.3f} {:>10.1f} {:>9}\n", head, r.number("median_s"),
        r.number("gflops"), r.number("yardstick_ratio"),
        r.number("peak_mem_bytes") / (1024.0 * 1024.0),
        r.has("max_rel_err") ? fmt::format("{:.2e}", r.number("max_rel_err")) : std::string("-"));
  }
  return text;
}

}  // namespace

Launcher parse_launcher(const std::string& name) {
  if (name == "auto") {
    return Launcher::automatic;
  }
  if (name == "mpirun") {
    return Launcher::mpirun;
  }
  LONGSEQ_REQUIRE(name == "srun", "suite run: --launcher must be auto, mpirun or srun, got '{}'",
                  name);
  return Launcher::srun;
}

int run_suite(const SuiteRunRequest& request, std::ostream& out) {
  const Suite suite = load_suite(request.suite_path);
  std::vector<RunRecord> records;
  if (is_results_file(request.results_path)) {
    records = read_results(request.results_path);
    for (const RunRecord& record : records) {
      LONGSEQ_REQUIRE(!record.has("suite") || record.text("suite") == suite.name,
                      "suite run: {} holds results of suite '{}', not '{}'; choose another -o",
                      request.results_path, record.text("suite"), suite.name);
    }
  }
  for (const int ranks : request.only_ranks) {
    LONGSEQ_REQUIRE(std::any_of(suite.runs.begin(), suite.runs.end(),
                                [&](const SuiteRun& run) { return run.ranks == ranks; }),
                    "suite run: --ranks {}: {} has no run on {} ranks", ranks, request.suite_path,
                    ranks);
  }
  std::set<std::string> done;
  for (const RunRecord& record : records) {
    if (!request.retry_failed || record.text("status") == "ok") {
      done.insert(record.text("run_key"));
    }
  }
  std::map<int, std::vector<std::size_t>> groups;
  std::size_t selected = 0;
  Driver driver(request, suite, records, out);
  for (const SuiteRun& run : suite.runs) {
    const bool wanted = request.only_ranks.empty() ||
                        std::find(request.only_ranks.begin(), request.only_ranks.end(),
                                  run.ranks) != request.only_ranks.end();
    if (!wanted) {
      continue;
    }
    ++selected;
    if (!done.contains(run.key)) {
      groups[run.ranks].push_back(run.index);
      driver.progress().total_flops += run.predicted_flops;
    }
  }
  std::size_t pending = 0;
  for (const auto& [ranks, runs] : groups) {
    pending += runs.size();
  }
  driver.progress().total = pending;
  out << fmt::format("suite {}: {} runs, {} already in {}, {} to run\n", suite.name, selected,
                     selected - pending, request.results_path, pending);
  out.flush();
  if (pending == 0 && !is_results_file(request.results_path)) {
    write_results(request.results_path, records);
  }
  try {
    const StopSignals signals;
    for (const auto& [ranks, runs] : groups) {
      driver.run_group(ranks, runs);
    }
  } catch (const Stopped& stopped) {
    out << fmt::format(
        "\nstopped by signal {}; {} keeps every finished run, and the same "
        "command resumes\n",
        stopped.signal, request.results_path);
    return 128 + stopped.signal;
  }
  const std::vector<RunRecord>& all = driver.records();
  out << "\n" << summary_table(suite, all);
  const auto failed = std::count_if(all.begin(), all.end(),
                                    [](const RunRecord& r) { return r.text("status") != "ok"; });
  out << fmt::format("\n{} records in {}{}; report: longseq report {}\n", all.size(),
                     request.results_path, failed > 0 ? fmt::format(", {} failed", failed) : "",
                     request.results_path);
  return failed > 0 ? 1 : 0;
}

}  // namespace longseq
