#include "runtime/log.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <string>

namespace longseq {

std::shared_ptr<spdlog::logger> make_logger(int rank, spdlog::level::level_enum level) {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("rank " + std::to_string(rank), sink);
  logger->set_pattern("[%H:%M:%S.%e] [%n] [%l] %v");
  logger->set_level(level);
  return logger;
}

}  // namespace longseq
