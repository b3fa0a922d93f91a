#include "suites/runner/suite_worker.h"

#include <fmt/format.h>

#include <cstdio>
#include <exception>
#include <map>
#include <memory>
#include <utility>

#include "parallel/mpi_communicator.h"
#include "parallel/mpi_session.h"
#include "runtime/error.h"
#include "runtime/memory.h"
#include "suites/runner/run_records.h"
#include "suites/spec/suite_spec.h"
#include "suites/yardstick.h"

namespace longseq {

namespace {

// Appends lines to the stream file, each flushed at once (rank 0 only).
class StreamWriter {
 public:
  explicit StreamWriter(const std::string& path) : file_(std::fopen(path.c_str(), "a")) {
    LONGSEQ_REQUIRE(file_ != nullptr, "suite worker: cannot append to {}", path);
  }
  ~StreamWriter() { std::fclose(file_); }
  StreamWriter(const StreamWriter&) = delete;
  StreamWriter& operator=(const StreamWriter&) = delete;

  void line(const std::string& text) {
    std::fputs(text.c_str(), file_);
    std::fputc('\n', file_);
    std::fflush(file_);
  }

 private:
  std::FILE* file_;
};

std::string event(const char* name, std::size_t index) {
  return fmt::format("{{\"event\": \"{}\", \"index\": {}}}", name, index);
}

}  // namespace

int run_suite_worker(int* argc, char*** argv, const SuiteWorkerRequest& request) {
  const Suite suite = load_suite(request.suite_path);
  const MpiSession session(argc, argv);
  const std::unique_ptr<MpiCommunicator> world = MpiCommunicator::world(session);
  const std::unique_ptr<MpiCommunicator> self = world->split(world->rank(), 0, "self");
  ComputeContext context(request.threads);
  std::unique_ptr<StreamWriter> stream;
  if (world->rank() == 0) {
    stream = std::make_unique<StreamWriter>(request.stream_path);
  }
  std::map<std::pair<Device, DType>, Yardstick> yardsticks;
  for (const std::size_t index : request.runs) {
    LONGSEQ_REQUIRE(index < suite.runs.size(), "suite worker: run {} of {} runs", index,
                    suite.runs.size());
    const SuiteRun& run = suite.runs[index];
    LONGSEQ_REQUIRE(run.ranks == world->size(),
                    "suite worker: run {} wants {} ranks, the job has {}", index, run.ranks,
                    world->size());
    if (stream) {
      stream->line(event("start", index));
    }
    try {
      const MixerOptions& options = run.bench.mixer_options;
      const auto device_dtype = std::make_pair(options.device, options.dtype);
      if (!yardsticks.contains(device_dtype)) {
        LONGSEQ_REQUIRE(options.device == Device::cpu || cuda_device_count() > 0,
                        "device cuda but no usable GPU ({})", cuda_unavailable_reason());
        yardsticks[device_dtype] =
            measure_shared_yardstick(context, *world, options.device, options.dtype);
      }
      set_memory_limit(options.device, suite.limits.memory_bytes);
      const std::vector<BenchResult> results =
          run_bench(context, *world, *self, run.bench, yardsticks[device_dtype]);
      set_memory_limit(options.device, 0);
      if (stream) {
        for (const RunRecord& record :
             success_records(suite, run, results, context.cpu_threads())) {
          stream->line(record_to_json(record));
        }
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s%zu failed on rank %d: %s\n", kWorkerFailurePrefix, index,
                   world->rank(), e.what());
      std::fflush(stderr);
      session.abort_job(3);
    }
    if (stream) {
      stream->line(event("done", index));
    }
  }
  return 0;
}

}  // namespace longseq
