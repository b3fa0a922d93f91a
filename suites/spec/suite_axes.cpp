#include "suites/spec/suite_axes.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <limits>

#include "models/mixer_registry.h"
#include "parallel/sequence_layout.h"
#include "runtime/device.h"
#include "runtime/dtype.h"
#include "runtime/error.h"

namespace longseq {

namespace {

enum class ValueKind : std::uint8_t { text, integer, flag, number };

// The ranges are generous: anything beyond them is a typo, not a run (a sequence of 2^34 tokens,
// a model 1024 heads wide).
struct AxisRow {
  Axis axis{};
  const char* name = "";
  ValueKind kind{};
  std::int64_t min = 0;
  std::int64_t max = 0;
};

constexpr std::int64_t kMaxSequence = std::int64_t{1} << 34;

constexpr AxisRow kAxes[] = {
    {Axis::mixer, "mixer", ValueKind::text},
    {Axis::seq, "seq", ValueKind::integer, 1, kMaxSequence},
    {Axis::batch, "batch", ValueKind::integer, 1, 65536},
    {Axis::heads, "heads", ValueKind::integer, 1, 1024},
    {Axis::kv_heads, "kv_heads", ValueKind::integer, 1, 1024},
    {Axis::head_dim, "head_dim", ValueKind::integer, 1, 1024},
    {Axis::causal, "causal", ValueKind::flag},
    {Axis::ranks, "ranks", ValueKind::integer, 1, 65536},
    {Axis::layout, "layout", ValueKind::text},
    {Axis::strategy, "strategy", ValueKind::text},
    {Axis::dtype, "dtype", ValueKind::text},
    {Axis::device, "device", ValueKind::text},
    {Axis::pass, "pass", ValueKind::text},
    {Axis::seed, "seed", ValueKind::integer, 0, std::numeric_limits<std::int64_t>::max()},
    {Axis::features, "features", ValueKind::integer, 1, 4096},
    {Axis::redraw_interval, "redraw_interval", ValueKind::integer, 0, std::int64_t{1} << 40},
    {Axis::state_size, "state_size", ValueKind::integer, 1, 4096},
    {Axis::local_chunk, "local_chunk", ValueKind::integer, 0, kMaxSequence},
    {Axis::momentum, "momentum", ValueKind::number},
    {Axis::momentum_step, "momentum_step", ValueKind::number},
    {Axis::check, "check", ValueKind::flag},
};
static_assert(std::size(kAxes) == kAxisCount, "one row per axis");

const AxisRow& row(Axis axis) { return kAxes[static_cast<std::size_t>(axis)]; }

std::string number_text(double value) { return fmt::format("{:.17g}", value); }

std::int64_t integer_of(const std::string& text) {
  std::int64_t value = 0;
  const std::from_chars_result result =
      std::from_chars(text.data(), text.data() + text.size(), value);
  LONGSEQ_CHECK(result.ec == std::errc() && result.ptr == text.data() + text.size(),
                "[suite] '{}' is not a canonical integer", text);
  return value;
}

double number_of(const std::string& text) {
  double value = 0;
  const std::from_chars_result result =
      std::from_chars(text.data(), text.data() + text.size(), value);
  LONGSEQ_CHECK(result.ec == std::errc() && result.ptr == text.data() + text.size(),
                "[suite] '{}' is not a canonical number", text);
  return value;
}

// The canonical text of a string-valued axis, or a UserError message.
std::string checked_text(Axis axis, const std::string& value) {
  switch (axis) {
    case Axis::mixer: {
      const std::vector<std::string> known = registered_mixers();
      LONGSEQ_REQUIRE(std::find(known.begin(), known.end(), value) != known.end(),
                      "unknown mixer '{}' (known: {})", value, fmt::join(known, ", "));
      return value;
    }
    case Axis::layout:
      for (const LayoutKind kind :
           {LayoutKind::contiguous, LayoutKind::zigzag, LayoutKind::striped}) {
        if (value == layout_name(kind)) {
          return value;
        }
      }
      throw UserError(
          fmt::format("unknown layout '{}' (expected contiguous, zigzag or striped)", value));
    case Axis::dtype: {
      DType dtype = DType::f32;
      try {
        dtype = parse_dtype(value);
      } catch (const UserError&) {
        throw UserError(
            fmt::format("unknown dtype '{}' (expected fp32, bf16, fp16 or fp64)", value));
      }
      LONGSEQ_REQUIRE(
          dtype == DType::f32 || dtype == DType::bf16 || dtype == DType::f16 || dtype == DType::f64,
          "dtype '{}' is not a floating-point type (expected fp32, bf16, fp16 or fp64)", value);
      return std::string(dtype_name(dtype));
    }
    case Axis::device:
      for (const Device device : {Device::cpu, Device::cuda}) {
        if (value == device_name(device)) {
          return value;
        }
      }
      throw UserError(fmt::format("unknown device '{}' (expected cpu or cuda)", value));
    case Axis::pass:
      LONGSEQ_REQUIRE(value == "fwd" || value == "bwd" || value == "both",
                      "unknown pass '{}' (expected fwd, bwd or both)", value);
      return value;
    case Axis::strategy:
      LONGSEQ_REQUIRE(!value.empty(), "empty strategy");
      return value;
    default:
      break;
  }
  LONGSEQ_CHECK(false, "[suite] axis {} is not string-valued", axis_name(axis));
}

}  // namespace

std::string_view axis_name(Axis axis) { return row(axis).name; }

std::optional<Axis> find_axis(std::string_view name) {
  for (const AxisRow& entry : kAxes) {
    if (name == entry.name) {
      return entry.axis;
    }
  }
  return std::nullopt;
}

const std::vector<std::string>& axis_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> list;
    for (const AxisRow& entry : kAxes) {
      list.emplace_back(entry.name);
    }
    return list;
  }();
  return names;
}

AxisSetting read_axis(const SpecReader& reader, Axis axis, const Field& field) {
  const AxisRow& entry = row(axis);
  AxisSetting result{"", field};
  switch (entry.kind) {
    case ValueKind::integer:
      result.text = std::to_string(reader.as_integer(field, entry.min, entry.max));
      break;
    case ValueKind::flag:
      result.text = std::string(reader.as_bool(field) ? "1" : "0");
      break;
    case ValueKind::number:
      result.text = number_text(reader.as_number(field, std::numeric_limits<double>::lowest(),
                                                 std::numeric_limits<double>::max()));
      break;
    case ValueKind::text: {
      const std::string value = reader.as_string(field);
      try {
        result.text = checked_text(axis, value);
      } catch (const UserError& error) {
        reader.fail(field, error.what());
      }
      break;
    }
  }
  return result;
}

void apply_axis(Axis axis, const std::string& text, BenchConfig& config, int& ranks) {
  MixerOptions& options = config.mixer_options;
  switch (axis) {
    case Axis::mixer:
      config.mixer = text;
      return;
    case Axis::seq:
      config.seq = integer_of(text);
      return;
    case Axis::batch:
      options.batch = integer_of(text);
      return;
    case Axis::heads:
      options.heads = integer_of(text);
      return;
    case Axis::kv_heads:
      options.kv_heads = integer_of(text);
      return;
    case Axis::head_dim:
      options.head_dim = integer_of(text);
      return;
    case Axis::causal:
      options.causal = text == "1";
      return;
    case Axis::ranks:
      ranks = static_cast<int>(integer_of(text));
      return;
    case Axis::layout:
      config.layout = text;
      return;
    case Axis::strategy:
      options.strategy = text;
      return;
    case Axis::dtype:
      options.dtype = parse_dtype(text);
      return;
    case Axis::device:
      options.device = parse_device(text);
      return;
    case Axis::pass:
      config.pass = text;
      return;
    case Axis::seed:
      config.seed = static_cast<std::uint64_t>(integer_of(text));
      options.seed = config.seed;
      return;
    case Axis::features:
      options.features = integer_of(text);
      return;
    case Axis::redraw_interval:
      options.redraw_interval = integer_of(text);
      return;
    case Axis::state_size:
      options.state_size = integer_of(text);
      return;
    case Axis::local_chunk:
      options.local_chunk = integer_of(text);
      return;
    case Axis::momentum:
      options.momentum = number_of(text);
      return;
    case Axis::momentum_step:
      options.momentum_step = number_of(text);
      return;
    case Axis::check:
      config.check = text == "1";
      return;
  }
}

std::string axis_text(Axis axis, const BenchConfig& config, int ranks) {
  const MixerOptions& options = config.mixer_options;
  switch (axis) {
    case Axis::mixer:
      return config.mixer;
    case Axis::seq:
      return std::to_string(config.seq);
    case Axis::batch:
      return std::to_string(options.batch);
    case Axis::heads:
      return std::to_string(options.heads);
    case Axis::kv_heads:
      return std::to_string(options.kv_heads > 0 ? options.kv_heads : options.heads);
    case Axis::head_dim:
      return std::to_string(options.head_dim);
    case Axis::causal:
      return options.causal ? "1" : "0";
    case Axis::ranks:
      return std::to_string(ranks);
    case Axis::layout:
      return config.layout;
    case Axis::strategy:
      return options.strategy;
    case Axis::dtype:
      return std::string(dtype_name(options.dtype));
    case Axis::device:
      return std::string(device_name(options.device));
    case Axis::pass:
      return config.pass;
    case Axis::seed:
      return std::to_string(config.seed);
    case Axis::features:
      return std::to_string(options.features);
    case Axis::redraw_interval:
      return std::to_string(options.redraw_interval);
    case Axis::state_size:
      return std::to_string(options.state_size);
    case Axis::local_chunk:
      return std::to_string(options.local_chunk);
    case Axis::momentum:
      return number_text(options.momentum);
    case Axis::momentum_step:
      return number_text(options.momentum_step);
    case Axis::check:
      return config.check ? "1" : "0";
  }
  LONGSEQ_CHECK(false, "[suite] unknown axis {}", static_cast<std::size_t>(axis));
}

}  // namespace longseq
