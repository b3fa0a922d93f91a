// The axes of a suite (mixer, seq, batch, ... momentum_step): their YAML values, their canonical
// text, and how a set of them becomes a BenchConfig.
//
// How to extend: a new BenchConfig or MixerOptions field that suites should vary gets an entry in
// the Axis enum (at the end, so that run keys of older results stay valid), a row in the table of
// suite_axes.cpp (name, how its YAML value is read), and a line in apply_axis and axis_text.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "suites/mixer_bench.h"
#include "suites/spec/spec_reader.h"

namespace longseq {

// In the order of run keys (see run_key for where check goes).
enum class Axis : std::size_t {
  mixer,
  seq,
  batch,
  heads,
  kv_heads,
  head_dim,
  causal,
  ranks,
  layout,
  strategy,
  dtype,
  device,
  pass,
  seed,
  features,
  redraw_interval,
  state_size,
  local_chunk,
  momentum,
  momentum_step,
  check,  // a run's own check, over the suite's (keys print it last, after reps and warmup)
};
inline constexpr std::size_t kAxisCount = static_cast<std::size_t>(Axis::check) + 1;

std::string_view axis_name(Axis axis);
std::optional<Axis> find_axis(std::string_view name);
// Every axis name, in key order (for messages listing the allowed keys).
const std::vector<std::string>& axis_names();

// One axis value of a spec, where it was written.
struct AxisSetting {
  std::string text;  // canonical: as in run keys ("1" for true, "fp32" for f32, %.17g numbers)
  Field field;
};

// Reads and checks one scalar value of `axis` (type, range, known mixer, layout, dtype, device
// or pass), returning its canonical text. Strategies are checked later, against the mixer.
AxisSetting read_axis(const SpecReader& reader, Axis axis, const Field& field);

// The values of every axis that a run sets; unset ones take the BenchConfig defaults.
using AxisSettings = std::array<std::optional<AxisSetting>, kAxisCount>;

inline const std::optional<AxisSetting>& setting(const AxisSettings& settings, Axis axis) {
  return settings[static_cast<std::size_t>(axis)];
}

// Writes the canonical value `text` of `axis` into the config and the rank count.
void apply_axis(Axis axis, const std::string& text, BenchConfig& config, int& ranks);

// The canonical text of `axis` in a resolved config (kv_heads 0 reads as heads).
std::string axis_text(Axis axis, const BenchConfig& config, int ranks);

}  // namespace longseq
