// The orchestration commands of `longseq`: suite plan | run | collect | export (and the internal
// suite worker), compare, report and slurm. main.cpp owns the program and `info` / `bench`; this
// adds the rest to its command line and runs whichever was given.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

#include "suites/runner/slurm_jobs.h"
#include "suites/runner/suite_driver.h"
#include "suites/runner/suite_worker.h"

namespace longseq {

class SuiteCommands {
 public:
  // `executable`: how this program was started (argv[0]), resolved to its own path.
  SuiteCommands(CLI::App& app, const std::string& executable);

  // Runs the command that was parsed; nullopt when it was none of these. Returns the exit code.
  std::optional<int> run(int* argc, char*** argv, int threads);

 private:
  std::string executable_;
  CLI::App* suite_ = nullptr;
  CLI::App* plan_ = nullptr;
  CLI::App* run_ = nullptr;
  CLI::App* collect_ = nullptr;
  CLI::App* export_ = nullptr;
  CLI::App* worker_ = nullptr;
  CLI::App* compare_ = nullptr;
  CLI::App* report_ = nullptr;
  CLI::App* slurm_ = nullptr;

  std::string suite_path_;
  SuiteRunRequest run_request_;
  std::string launcher_ = "auto";
  std::vector<std::string> collect_inputs_;
  std::string collect_output_;
  std::string export_input_;
  std::vector<std::string> export_outputs_;
  SuiteWorkerRequest worker_request_;
  std::string compare_current_, compare_baseline_;
  std::string report_input_, report_dir_;
  bool report_no_plots_ = false;
  SlurmRequest slurm_request_;
  std::string slurm_partition_, slurm_account_, slurm_time_;
  int slurm_nodes_ = -1, slurm_gpus_ = -1, slurm_cpus_ = -1;
  bool slurm_array_ = false;
};

}  // namespace longseq
