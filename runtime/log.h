// Rank-aware logging: every line says which rank wrote it.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>

namespace longseq {

// A logger writing "[time] [rank R] [level] message" to standard error. Each program owns its
// logger and passes it where needed; nothing is registered globally.
std::shared_ptr<spdlog::logger> make_logger(int rank,
                                            spdlog::level::level_enum level = spdlog::level::info);

}  // namespace longseq
