#include "suites/suite_commands.h"

#include <fmt/format.h>

#include <filesystem>
#include <iostream>

#include "runtime/error.h"
#include "suites/results/compare.h"
#include "suites/results/report.h"
#include "suites/results/report_plots.h"
#include "suites/results/results_file.h"
#include "suites/runner/results_collect.h"
#include "suites/spec/suite_spec.h"

namespace longseq {

namespace {

std::string own_path(const std::string& argv0) {
  std::error_code error;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", error);
  return error ? std::filesystem::absolute(argv0).string() : self.string();
}

void export_records(const std::string& input, const std::vector<std::string>& outputs,
                    std::ostream& out) {
  const std::vector<RunRecord> records = read_results(input);
  for (const std::string& output : outputs) {
    std::error_code error;
    LONGSEQ_REQUIRE(!std::filesystem::equivalent(input, output, error),
                    "suite export: {} is the results file itself", output);
    const std::string extension = std::filesystem::path(output).extension().string();
    LONGSEQ_REQUIRE(extension == ".json" || extension == ".jsonl" || extension == ".csv",
                    "suite export: {}: the output must end in .json, .jsonl or .csv", output);
    if (extension == ".csv") {
      export_csv(records, output);
    } else {
      export_json(records, output);
    }
    out << fmt::format("wrote {} records to {}\n", records.size(), output);
  }
}

int compare_files(const std::string& current, const std::string& baseline, std::ostream& out) {
  const CompareOutcome outcome = compare_results(read_results(current), read_results(baseline));
  out << outcome.text;
  return outcome.regressed ? 1 : 0;
}

int report_file(const std::string& input, std::string plot_dir, bool plots, std::ostream& out) {
  out << report_tables(read_results(input));
  if (!plots) {
    return 0;
  }
  if (plot_dir.empty()) {
    plot_dir = std::filesystem::path(input).replace_extension().string() + "-report";
  }
  const ReportPlots written = write_report_plots(input, plot_dir);
  if (!written.skipped.empty()) {
    out << "plots skipped: " << written.skipped << "\n";
    return 0;
  }
  out << fmt::format("plots in {}:\n", plot_dir);
  for (const std::string& file : written.files) {
    out << "  " << file << "\n";
  }
  return 0;
}

}  // namespace

SuiteCommands::SuiteCommands(CLI::App& app, const std::string& executable)
    : executable_(own_path(executable)) {
  suite_ = app.add_subcommand("suite", "plan, run, collect or export a YAML benchmark suite");
  suite_->require_subcommand(1);

  plan_ = suite_->add_subcommand("plan", "print the expanded runs with predicted FLOPs and memory");
  plan_->add_option("file", suite_path_, "suite file (YAML)")->required();

  run_ = suite_->add_subcommand("run", "run a suite: one MPI job per rank count, resumable");
  run_->add_option("file", run_request_.suite_path, "suite file (YAML)")->required();
  run_->add_option("-o,--output", run_request_.results_path, "results file (HDF5)")->required();
  run_->add_option("--ranks", run_request_.only_ranks, "run only these rank counts")
      ->delimiter(',');
  run_->add_option("--launcher", launcher_, "auto (srun inside Slurm, else mpirun), mpirun, srun");
  run_->add_flag("--retry-failed", run_request_.retry_failed,
                 "run again the runs the results file records as failed");

  collect_ = suite_->add_subcommand("collect", "merge results files (e.g. of Slurm jobs) into one");
  collect_->add_option("inputs", collect_inputs_, "results files or folders of them")->required();
  collect_->add_option("-o,--output", collect_output_, "merged results file (HDF5)")->required();

  export_ = suite_->add_subcommand("export", "write a results file as JSON lines or CSV");
  export_->add_option("results", export_input_, "results file")->required();
  export_->add_option("-o,--output", export_outputs_, "outputs: *.json / *.jsonl / *.csv")
      ->required();

  worker_ = suite_->add_subcommand("worker", "(internal) run some of a suite's runs in one job");
  worker_->group("");  // not listed: `suite run` starts it
  worker_->add_option("file", worker_request_.suite_path)->required();
  worker_->add_option("--runs", worker_request_.runs)->delimiter(',')->required();
  worker_->add_option("--stream", worker_request_.stream_path)->required();

  compare_ = app.add_subcommand("compare", "regression check of a results file against a baseline");
  compare_->add_option("current", compare_current_, "results file")->required();
  compare_->add_option("baseline", compare_baseline_, "baseline results file")->required();

  report_ = app.add_subcommand("report", "tables, fitted slopes, and plots where Python can draw");
  report_->add_option("results", report_input_, "results file")->required();
  report_->add_option("--plots", report_dir_, "folder for the plots (default: RESULTS-report)");
  report_->add_flag("--no-plots", report_no_plots_, "tables only");

  slurm_ = app.add_subcommand("slurm", "write sbatch scripts for a suite (and submit them)");
  slurm_->add_option("file", slurm_request_.suite_path, "suite file (YAML)")->required();
  slurm_->add_option("-o,--output", slurm_request_.out_dir,
                     "folder for the scripts, logs and results (default: slurm-SUITE)");
  slurm_->add_flag("--submit", slurm_request_.submit, "submit the scripts with sbatch");
  slurm_->add_option("--partition", slurm_partition_, "partition (overrides the suite)");
  slurm_->add_option("--account", slurm_account_, "account (overrides the suite)");
  slurm_->add_option("--time", slurm_time_, "time limit per job, e.g. 02:00:00");
  slurm_->add_option("--nodes", slurm_nodes_, "nodes per job");
  slurm_->add_option("--gpus-per-task", slurm_gpus_, "GPUs per task");
  slurm_->add_option("--cpus-per-task", slurm_cpus_, "CPUs per task");
  slurm_->add_flag("--array", slurm_array_, "one job array over the rank counts");
}

std::optional<int> SuiteCommands::run(int* argc, char*** argv, int threads) {
  if (plan_->parsed()) {
    std::cout << plan_text(load_suite(suite_path_));
    return 0;
  }
  if (run_->parsed()) {
    run_request_.launcher = parse_launcher(launcher_);
    run_request_.threads = threads;
    run_request_.executable = executable_;
    return run_suite(run_request_, std::cout);
  }
  if (collect_->parsed()) {
    return collect_results(collect_inputs_, collect_output_, std::cout);
  }
  if (export_->parsed()) {
    export_records(export_input_, export_outputs_, std::cout);
    return 0;
  }
  if (worker_->parsed()) {
    worker_request_.threads = threads;
    return run_suite_worker(argc, argv, worker_request_);
  }
  if (compare_->parsed()) {
    return compare_files(compare_current_, compare_baseline_, std::cout);
  }
  if (report_->parsed()) {
    return report_file(report_input_, report_dir_, !report_no_plots_, std::cout);
  }
  if (slurm_->parsed()) {
    slurm_request_.executable = executable_;
    if (slurm_->count("--partition") > 0) {
      slurm_request_.partition = slurm_partition_;
    }
    if (slurm_->count("--account") > 0) {
      slurm_request_.account = slurm_account_;
    }
    if (slurm_->count("--time") > 0) {
      slurm_request_.time = slurm_time_;
    }
    if (slurm_->count("--nodes") > 0) {
      slurm_request_.nodes = slurm_nodes_;
    }
    if (slurm_->count("--gpus-per-task") > 0) {
      slurm_request_.gpus_per_task = slurm_gpus_;
    }
    if (slurm_->count("--cpus-per-task") > 0) {
      slurm_request_.cpus_per_task = slurm_cpus_;
    }
    if (slurm_array_) {
      slurm_request_.array = true;
    }
    return write_slurm_jobs(slurm_request_, std::cout);
  }
  return std::nullopt;
}

}  // namespace longseq
