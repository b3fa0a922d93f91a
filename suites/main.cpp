// The `longseq` command: see the command-line table of the design. Bad input exits 2 with one
// line, internal failures exit 1.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "models/mixer_registry.h"
#include "parallel/mpi_communicator.h"
#include "parallel/mpi_session.h"
#include "runtime/error.h"
#include "suites/info.h"
#include "suites/mixer_bench.h"
#include "suites/report_format.h"
#include "suites/suite_commands.h"

namespace {

struct BenchRequest {
  std::vector<std::string> mixers{"softmax", "flash"};
  std::vector<std::int64_t> lengths{1024, 2048, 4096};
  std::string dtype = "fp32";
  std::string device = "cpu";
  bool json = false;
  longseq::BenchConfig config;
};

int run_bench(int* argc, char*** argv, BenchRequest request, int threads) {
  longseq::BenchConfig config = request.config;
  config.mixer_options.dtype = longseq::parse_dtype(request.dtype);
  config.mixer_options.device = longseq::parse_device(request.device);
  config.mixer_options.seed = config.seed;
  const longseq::MpiSession session(argc, argv);
  const std::unique_ptr<longseq::MpiCommunicator> world = longseq::MpiCommunicator::world(session);
  const std::unique_ptr<longseq::MpiCommunicator> self = world->split(world->rank(), 0, "self");
  longseq::ComputeContext context(threads);
  if (config.mixer_options.device == longseq::Device::cuda && longseq::cuda_device_count() == 0) {
    throw longseq::UserError(fmt::format("bench: --device cuda but no usable GPU ({})",
                                         longseq::cuda_unavailable_reason()));
  }
  const longseq::Yardstick yardstick = longseq::measure_shared_yardstick(
      context, *world, config.mixer_options.device, config.mixer_options.dtype);
  std::vector<longseq::BenchResult> results;
  for (const std::string& mixer : request.mixers) {
    for (const std::int64_t length : request.lengths) {
      config.mixer = mixer;
      config.seq = length;
      for (const longseq::BenchResult& result :
           longseq::run_bench(context, *world, *self, config, yardstick)) {
        if (request.json && world->rank() == 0) {
          std::cout << longseq::result_json(result, context.cpu_threads()) << std::endl;
        }
        results.push_back(result);
      }
    }
  }
  if (!request.json && world->rank() == 0) {
    std::cout << longseq::results_table(results);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"longseq: sequence models on inputs longer than one accelerator holds"};
  app.require_subcommand(1);
  int threads = 0;
  app.add_option("--threads", threads, "CPU threads per rank for the kernels (0: every core)")
      ->check(CLI::NonNegativeNumber);

  CLI::App* info =
      app.add_subcommand("info", "build configuration, devices, library versions, yardsticks");
  bool info_json = false;
  info->add_flag("--json", info_json, "print one JSON object");

  CLI::App* bench =
      app.add_subcommand("bench", "measure mixers; under mpirun -np P, distributed over P ranks");
  BenchRequest request;
  longseq::MixerOptions& options = request.config.mixer_options;
  bench
      ->add_option("mixer", request.mixers,
                   "mixers, comma-separated: " +
                       fmt::format("{}", fmt::join(longseq::registered_mixers(), ", ")))
      ->delimiter(',');
  bench->add_option("--seq", request.lengths, "sequence lengths, comma-separated")->delimiter(',');
  bench->add_option("--batch", options.batch, "batch size");
  bench->add_option("--heads", options.heads, "query heads");
  bench->add_option("--kv-heads", options.kv_heads,
                    "key/value heads (grouped-query attention; default: --heads)");
  bench->add_option("--head-dim", options.head_dim, "head dimension");
  bench->add_flag("--causal", options.causal, "causal masking");
  bench->add_option("--layout", request.config.layout,
                    "sequence layout: contiguous, zigzag, striped");
  bench->add_option("--strategy", options.strategy,
                    "across ranks: ring, alltoall, allgather (exact attention); chain, allgather "
                    "(state-passing mixers)");
  bench->add_option("--features", options.features, "performer: random features");
  bench->add_option("--redraw-interval", options.redraw_interval,
                    "performer: redraw the features every this many steps (0: never)");
  bench->add_option("--state-size", options.state_size, "s4, s4d, dss, gss: SSM state size");
  bench->add_option("--local-chunk", options.local_chunk,
                    "gss: chunked local attention after the block, in tokens (0: none)");
  bench->add_option("--momentum", options.momentum, "momentum: mu");
  bench->add_option("--momentum-step", options.momentum_step, "momentum: gamma");
  bench->add_option("--dtype", request.dtype, "fp32, bf16, fp16");
  bench->add_option("--device", request.device, "cpu or cuda");
  bench->add_option("--pass", request.config.pass, "fwd, bwd or both (both reports each pass)");
  bench->add_option("--reps", request.config.reps, "timed repetitions (the median is reported)");
  bench->add_option("--warmup", request.config.warmup, "untimed repetitions first");
  bench->add_option("--seed", request.config.seed,
                    "seed of the random inputs and of the mixers' parameters and features");
  bench->add_flag("--check", request.config.check,
                  "report the error against a single-rank run of the same inputs");
  bench->add_flag("--json", request.json, "one JSON object per result instead of a table");

  longseq::SuiteCommands suite_commands(app, argv[0]);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "longseq: error: %s\n", e.what());
    return 2;
  }

  try {
    if (info->parsed()) {
      longseq::ComputeContext context(threads);
      std::cout << longseq::describe_build_and_machine(context, info_json);
      return 0;
    }
    if (const std::optional<int> code = suite_commands.run(&argc, &argv, threads)) {
      return *code;
    }
    return run_bench(&argc, &argv, request, threads);
  } catch (const longseq::UserError& e) {
    std::fprintf(stderr, "longseq: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "longseq: internal error: %s\n", e.what());
    return 1;
  }
}
