#include "suites/runner/slurm_jobs.h"

#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <set>

#include "runtime/error.h"
#include "slurm/sbatch_script.h"
#include "suites/spec/suite_spec.h"

namespace longseq {

namespace {

namespace fs = std::filesystem;

// Runs `sbatch --parsable SCRIPT` and returns the job id it prints.
std::string submit(const fs::path& script) {
  const std::string command = "sbatch --parsable " + shell_quote(script.string()) + " 2>&1";
  std::FILE* pipe = ::popen(command.c_str(), "r");
  LONGSEQ_REQUIRE(pipe != nullptr, "slurm: cannot run sbatch");
  std::string output;
  char buffer[256];
  while (std::fgets(buffer, sizeof(buffer), pipe) != nullptr) {
    output += buffer;
  }
  const int status = ::pclose(pipe);
  while (!output.empty() && (output.back() == '\n' || output.back() == '\r')) {
    output.pop_back();
  }
  LONGSEQ_REQUIRE(status == 0, "slurm: sbatch refused {}: {}", script.string(),
                  output.empty() ? std::string("(no output; is Slurm installed?)") : output);
  return output.substr(0, output.find(';'));
}

}  // namespace

int write_slurm_jobs(const SlurmRequest& request, std::ostream& out) {
  const Suite suite = load_suite(request.suite_path);
  SlurmSettings settings = suite.slurm;
  settings.partition = request.partition.value_or(settings.partition);
  settings.account = request.account.value_or(settings.account);
  settings.time = request.time.value_or(settings.time);
  settings.nodes = request.nodes.value_or(settings.nodes);
  settings.gpus_per_task = request.gpus_per_task.value_or(settings.gpus_per_task);
  settings.cpus_per_task = request.cpus_per_task.value_or(settings.cpus_per_task);
  settings.array = request.array.value_or(settings.array);
  for (const std::optional<int>& count :
       {request.nodes, request.gpus_per_task, request.cpus_per_task}) {
    LONGSEQ_REQUIRE(!count || *count >= 0, "slurm: counts must not be negative, got {}", *count);
  }
  std::set<int> rank_set;
  for (const SuiteRun& run : suite.runs) {
    rank_set.insert(run.ranks);
  }
  const fs::path dir = fs::absolute(request.out_dir.empty() ? fs::path("slurm-" + suite.name)
                                                            : fs::path(request.out_dir));
  std::error_code error;
  fs::create_directories(dir, error);
  LONGSEQ_REQUIRE(!error, "slurm: cannot create {}: {}", dir.string(), error.message());
  const std::string suite_path = fs::absolute(request.suite_path).string();
  const std::string executable = fs::absolute(request.executable).string();

  const auto job_for = [&](std::vector<int> ranks, const std::string& name,
                           const std::string& output) {
    SbatchJob job;
    job.job_name = name;
    job.rank_counts = std::move(ranks);
    job.nodes = settings.nodes;
    job.gpus_per_task = settings.gpus_per_task;
    job.cpus_per_task = settings.cpus_per_task;
    job.time = settings.time;
    job.partition = settings.partition;
    job.account = settings.account;
    job.output_path = (dir / output).string();
    job.command = {
        executable, "suite",      "run",  suite_path, "--ranks",
        "{ranks}",  "--launcher", "srun", "-o",       (dir / "results-np{ranks}.h5").string()};
    return job;
  };
  std::vector<std::pair<fs::path, SbatchJob>> jobs;
  if (settings.array && rank_set.size() > 1) {
    const std::string name = "longseq-" + suite.name;
    jobs.emplace_back(dir / (suite.name + "-array.sbatch"),
                      job_for({rank_set.begin(), rank_set.end()}, name, "%x-%A_%a.out"));
  } else {
    for (const int ranks : rank_set) {
      const std::string name = fmt::format("longseq-{}-np{}", suite.name, ranks);
      jobs.emplace_back(dir / fmt::format("{}-np{}.sbatch", suite.name, ranks),
                        job_for({ranks}, name, "%x-%j.out"));
    }
  }
  for (const auto& [path, job] : jobs) {
    std::ofstream file(path);
    file << sbatch_script(job);
    file.close();
    LONGSEQ_REQUIRE(file.good(), "slurm: cannot write {}", path.string());
    fs::permissions(path, fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec,
                    fs::perm_options::add);
    out << "wrote " << path.string() << "\n";
  }
  if (request.submit) {
    for (const auto& [path, job] : jobs) {
      out << fmt::format("submitted {} as job {}\n", path.filename().string(), submit(path));
    }
  }
  out << fmt::format(
      "results: {}/results-np<P>.h5; merge with: longseq suite collect {} -o "
      "RESULTS.h5\n",
      dir.string(), dir.string());
  return 0;
}

}  // namespace longseq
