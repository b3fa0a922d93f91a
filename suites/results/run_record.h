// One record of a results file: the flat, ordered, named fields that describe one measured pass of
// one run of a suite (or one run that failed). Results files, their JSON and CSV exports, the
// worker-to-driver stream of `suite run`, `compare` and `report` all speak in records.
//
// Field names (a record has the ones that apply; readers must tolerate extra fields):
//   identity    suite, run_key (canonical config text, the same for every pass of a run), index,
//               pass (fwd | bwd)
//   config      mixer, seq, batch, heads, kv_heads, head_dim, causal (0/1), ranks, layout,
//               strategy, dtype, device, reps, warmup, seed, check (0/1), features,
//               redraw_interval, state_size, local_chunk, momentum, momentum_step
//   outcome     status ("ok" | "failed"), message (why it failed; empty when ok)
//   build       git_commit, compiler, cxx_flags, cuda_architectures
//   machine     hostname, cpu_model, cpu_cores, gpu
//   timings     median_s, spread ((max - min) / median), flops, gflops, flop_convention,
//               yardstick_name, yardstick_gflops, yardstick_ratio (gflops / yardstick_gflops),
//               threads (per rank), compute_max_s, compute_min_s (slowest and fastest rank)
//   memory      peak_mem_bytes, extra_mem_bytes, resident_extra_bytes (per rank, max over ranks)
//   traffic     bytes_sent (per rank, max), overlap
//   accuracy    max_rel_err (present only when the run checked against one rank)
//   limits      timeout_s, memory_limit_bytes
//   tolerances  tolerance_time, tolerance_memory, tolerance_error, normalise ("yardstick" | "none")
//   when        finished_at (UTC, ISO 8601)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace longseq {

using FieldValue = std::variant<std::int64_t, double, std::string>;

class RunRecord {
 public:
  // Sets a field, replacing its value where it exists (the order of first setting is kept).
  void set(std::string_view name, FieldValue value);
  [[nodiscard]] const FieldValue* find(std::string_view name) const;
  [[nodiscard]] bool has(std::string_view name) const { return find(name) != nullptr; }
  // Typed reads; throw Error naming the field when it is missing or of another kind. number()
  // reads integers and floating values alike.
  [[nodiscard]] const std::string& text(std::string_view name) const;
  [[nodiscard]] double number(std::string_view name) const;
  [[nodiscard]] std::int64_t integer(std::string_view name) const;
  [[nodiscard]] const std::vector<std::pair<std::string, FieldValue>>& fields() const {
    return fields_;
  }

 private:
  std::vector<std::pair<std::string, FieldValue>> fields_;
};

// A field's value as text: integers in decimal, doubles with 17 significant digits (round trip),
// strings as they are.
std::string field_text(const FieldValue& value);

// One JSON object on one line, fields in order (strings escaped, non-finite doubles as null).
std::string record_to_json(const RunRecord& record);
// Parses what record_to_json wrote (a flat JSON object of strings, numbers and null); integers
// without a fraction or exponent become int64, other numbers double, null a NaN double. Throws
// UserError naming `where` on malformed input.
RunRecord record_from_json(std::string_view line, std::string_view where);

}  // namespace longseq
