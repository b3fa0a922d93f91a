// The `longseq` command: see DESIGN.md's command-line table. Bad input exits 2 with one line,
// internal failures exit 1.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "runtime/error.h"
#include "suites/attention_bench.h"
#include "suites/info.h"
#include "suites/report_format.h"

namespace {

int run_bench(const std::vector<std::string>& mixers, const std::vector<std::int64_t>& lengths,
              longseq::AttentionBenchConfig config, const std::string& dtype,
              const std::string& device, int threads, bool json) {
  config.dtype = longseq::parse_dtype(dtype);
  config.device = longseq::parse_device(device);
  longseq::ComputeContext context(threads);
  if (config.device == longseq::Device::cuda && longseq::cuda_device_count() == 0) {
    throw longseq::UserError(fmt::format("bench: --device cuda but no usable GPU ({})",
                                         longseq::cuda_unavailable_reason()));
  }
  const longseq::Yardstick yardstick =
      longseq::measure_yardstick(context, config.device, config.dtype);
  std::vector<longseq::BenchResult> results;
  for (const std::string& mixer : mixers) {
    for (const std::int64_t length : lengths) {
      config.mixer = mixer;
      config.seq = length;
      for (const longseq::BenchResult& result :
           longseq::run_attention_bench(context, config, yardstick)) {
        if (json) {
          std::cout << longseq::result_json(result, context.cpu_threads()) << std::endl;
        }
        results.push_back(result);
      }
    }
  }
  if (!json) {
    std::cout << longseq::results_table(results);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"longseq: sequence models on inputs longer than one accelerator holds"};
  app.require_subcommand(1);
  int threads = 0;
  app.add_option("--threads", threads, "CPU threads for the kernels (0: every core)")
      ->check(CLI::NonNegativeNumber);

  CLI::App* info =
      app.add_subcommand("info", "build configuration, devices, library versions, yardsticks");
  bool info_json = false;
  info->add_flag("--json", info_json, "print one JSON object");

  CLI::App* bench = app.add_subcommand("bench", "one measurement per mixer and sequence length");
  std::vector<std::string> mixers{"softmax", "flash"};
  std::vector<std::int64_t> lengths{1024, 2048, 4096};
  longseq::AttentionBenchConfig config;
  std::string dtype = "fp32";
  std::string device = "cpu";
  bool json = false;
  bench->add_option("mixer", mixers, "mixers, comma-separated: softmax (materialised), flash")
      ->delimiter(',');
  bench->add_option("--seq", lengths, "sequence lengths, comma-separated")->delimiter(',');
  bench->add_option("--batch", config.batch, "batch size");
  bench->add_option("--heads", config.heads, "query heads");
  bench->add_option("--kv-heads", config.kv_heads,
                    "key/value heads (grouped-query attention; default: --heads)");
  bench->add_option("--head-dim", config.head_dim, "head dimension");
  bench->add_flag("--causal", config.causal, "causal masking");
  bench->add_option("--layout", config.layout, "sequence layout: contiguous, zigzag, striped");
  bench->add_option("--strategy", config.strategy,
                    "distribution strategy: ring, alltoall, allgather");
  bench->add_option("--dtype", dtype, "fp32, bf16, fp16");
  bench->add_option("--device", device, "cpu or cuda");
  bench->add_option("--pass", config.pass, "fwd, bwd or both (both reports each pass)");
  bench->add_option("--reps", config.reps, "timed repetitions (the median is reported)");
  bench->add_option("--warmup", config.warmup, "untimed repetitions first");
  bench->add_option("--seed", config.seed, "seed of the random inputs");
  bench->add_flag("--check", config.check,
                  "report the error against the double-precision reference");
  bench->add_flag("--json", json, "one JSON object per result instead of a table");

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
    return run_bench(mixers, lengths, config, dtype, device, threads, json);
  } catch (const longseq::UserError& e) {
    std::fprintf(stderr, "longseq: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "longseq: internal error: %s\n", e.what());
    return 1;
  }
}
