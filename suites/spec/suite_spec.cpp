// Loading a suite: read and check every value (spec_reader.h, suite_axes.h), expand the matrix,
// drop the excluded runs, add the included ones, drop duplicates, then check each run as a whole
// against its mixer and predict its FLOPs and memory.
#include "suites/spec/suite_spec.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <set>
#include <utility>

#include "models/mixer_registry.h"
#include "parallel/sequence_layout.h"
#include "runtime/dtype.h"
#include "runtime/error.h"
#include "suites/spec/spec_reader.h"
#include "suites/spec/suite_axes.h"

namespace longseq {

namespace {

const std::vector<std::string> kSuiteKeys = {"suite",   "description", "defaults",    "matrix",
                                             "include", "exclude",     "repetitions", "warmup",
                                             "check",   "limits",      "tolerances",  "slurm"};
const std::vector<std::string> kLimitKeys = {"timeout", "memory"};
const std::vector<std::string> kToleranceKeys = {"time", "normalise", "memory", "error"};
const std::vector<std::string> kSlurmKeys = {"partition",     "account",       "time", "nodes",
                                             "gpus_per_task", "cpus_per_task", "array"};

constexpr int kDefaultRepetitions = 3;
constexpr int kDefaultWarmup = 1;
constexpr std::uint64_t kDefaultSeed = 1;
constexpr double kMaxTimeoutSeconds = 30.0 * 24 * 3600;
constexpr std::int64_t kMaxMemoryBytes = std::int64_t{1} << 50;
// Beyond this a run's own tensors could not be counted in bytes, let alone held.
constexpr double kMaxPredictedBytes = 4.0e18;

// One run of the expansion before it is checked as a whole.
struct PendingRun {
  SuiteRun run;
  AxisSettings settings;
  Field origin;  // the matrix, or the include entry, it came from
};

bool is_name_character(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}

bool all_digits(std::string_view text) {
  return !text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos;
}

// Slurm's time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S.
bool is_slurm_time(std::string_view text) {
  const std::size_t dash = text.find('-');
  if (dash != std::string_view::npos) {
    if (!all_digits(text.substr(0, dash))) {
      return false;
    }
    text.remove_prefix(dash + 1);
  }
  int groups = 0;
  while (true) {
    const std::size_t colon = text.find(':');
    if (!all_digits(text.substr(0, colon))) {
      return false;
    }
    ++groups;
    if (colon == std::string_view::npos) {
      break;
    }
    text.remove_prefix(colon + 1);
  }
  return groups <= 3;
}

class SuiteLoader {
 public:
  explicit SuiteLoader(const std::string& path) : reader_(path) { suite_.path = path; }

  Suite load() {
    const Field document = reader_.load_document();
    if (document.node.IsNull() || !document.node.IsDefined() ||
        (document.node.IsMap() && document.node.size() == 0)) {
      reader_.fail(document.mark, "",
                   "the suite is empty: it needs at least 'suite' (a name) and 'matrix'");
    }
    for (const auto& [key, field] : reader_.map_entries(document, kSuiteKeys, "a suite")) {
      read_top_level(key, field);
    }
    if (!suite_field_) {
      reader_.fail(document.mark, "suite", "missing: every suite has a name (suite: NAME)");
    }
    if (!matrix_field_ && include_.empty()) {
      reader_.fail(document.mark, "matrix",
                   "missing: a suite needs a matrix of runs (or include entries)");
    }
    expand();
    return std::move(suite_);
  }

 private:
  void read_top_level(const std::string& key, const Field& field) {
    if (key == "suite") {
      suite_.name = reader_.as_string(field);
      if (suite_.name.empty() || suite_.name.size() > 64 ||
          !std::all_of(suite_.name.begin(), suite_.name.end(), is_name_character)) {
        reader_.fail(field,
                     fmt::format("'{}' is not a suite name (1-64 letters, digits, '_', '-', '.')",
                                 suite_.name));
      }
      suite_field_ = field;
    } else if (key == "description") {
      suite_.description = reader_.as_string(field);
    } else if (key == "defaults") {
      read_defaults(field);
    } else if (key == "matrix") {
      read_matrix(field);
    } else if (key == "include") {
      for (const Field& entry : reader_.list_items(field)) {
        include_.push_back(read_include_entry(entry));
      }
    } else if (key == "exclude") {
      exclude_field_ = field;
      for (const Field& entry : reader_.list_items(field)) {
        exclude_.push_back(read_exclude_entry(entry));
      }
    } else if (key == "repetitions") {
      repetitions_ = static_cast<int>(reader_.as_integer(field, 1, 100000));
    } else if (key == "warmup") {
      warmup_ = static_cast<int>(reader_.as_integer(field, 0, 100000));
    } else if (key == "check") {
      check_ = reader_.as_bool(field);
    } else if (key == "limits") {
      read_limits(field);
    } else if (key == "tolerances") {
      read_tolerances(field);
    } else if (key == "slurm") {
      read_slurm(field);
    }
  }

  void read_limits(const Field& map) {
    for (const auto& [key, field] : reader_.map_entries(map, kLimitKeys, "limits")) {
      if (key == "timeout") {
        suite_.limits.timeout_s = reader_.as_number(field, 0, kMaxTimeoutSeconds);
        if (suite_.limits.timeout_s <= 0) {
          reader_.fail(field, "must be positive (seconds per run; leave it out for none)");
        }
      } else {
        suite_.limits.memory_bytes = reader_.as_bytes(field, kMaxMemoryBytes);
      }
    }
  }

  void read_tolerances(const Field& map) {
    for (const auto& [key, field] : reader_.map_entries(map, kToleranceKeys, "tolerances")) {
      if (key == "time") {
        suite_.tolerances.time = reader_.as_number(field, 0, 1000);
      } else if (key == "normalise") {
        const std::string value = reader_.as_string(field);
        if (value != "yardstick" && value != "none") {
          reader_.fail(field, fmt::format("expected yardstick or none, got '{}'", value));
        }
        suite_.tolerances.normalise_by_yardstick = value == "yardstick";
      } else if (key == "memory") {
        suite_.tolerances.memory = reader_.as_number(field, 0, 1000);
      } else {
        suite_.tolerances.error = reader_.as_number(field, 0, 1.0e6);
      }
    }
  }

  void read_slurm(const Field& map) {
    SlurmSettings& slurm = suite_.slurm;
    for (const auto& [key, field] : reader_.map_entries(map, kSlurmKeys, "slurm")) {
      if (key == "partition" || key == "account") {
        const std::string value = reader_.as_string(field);
        if (value.empty() || value.find_first_of(" \t\n") != std::string::npos) {
          reader_.fail(field,
                       fmt::format("'{}' is not a Slurm name (no spaces, not empty)", value));
        }
        (key == "partition" ? slurm.partition : slurm.account) = value;
      } else if (key == "time") {
        slurm.time = reader_.as_string(field);
        if (!is_slurm_time(slurm.time)) {
          reader_.fail(field, fmt::format("'{}' is not a Slurm time (e.g. \"01:30:00\", "
                                          "\"2-00:00:00\" or minutes)",
                                          slurm.time));
        }
      } else if (key == "nodes") {
        slurm.nodes = static_cast<int>(reader_.as_integer(field, 1, 100000));
      } else if (key == "gpus_per_task") {
        slurm.gpus_per_task = static_cast<int>(reader_.as_integer(field, 0, 64));
      } else if (key == "cpus_per_task") {
        slurm.cpus_per_task = static_cast<int>(reader_.as_integer(field, 1, 4096));
      } else {
        slurm.array = reader_.as_bool(field);
      }
    }
  }

  // One value of an axis where lists are not allowed.
  AxisSetting read_single(Axis axis, const Field& field, std::string_view where) const {
    if (field.node.IsSequence()) {
      reader_.fail(field, fmt::format("{} take a single value; lists belong under matrix", where));
    }
    return read_axis(reader_, axis, field);
  }

  void read_defaults(const Field& map) {
    for (const auto& [key, field] : reader_.map_entries(map, axis_names(), "defaults")) {
      const Axis axis = *find_axis(key);
      defaults_[static_cast<std::size_t>(axis)] = read_single(axis, field, "defaults");
    }
  }

  void read_matrix(const Field& map) {
    matrix_field_ = map;
    const auto entries = reader_.map_entries(map, axis_names(), "the matrix");
    if (entries.empty()) {
      reader_.fail(map, "names no axis (e.g. mixer: [flash, linear])");
    }
    for (const auto& [key, field] : entries) {
      const Axis axis = *find_axis(key);
      std::vector<AxisSetting> values;
      if (field.node.IsSequence()) {
        for (const Field& item : reader_.list_items(field)) {
          values.push_back(read_axis(reader_, axis, item));
        }
      } else {
        values.push_back(read_axis(reader_, axis, field));
      }
      matrix_.emplace_back(axis, std::move(values));
    }
  }

  struct Entry {
    Field field;
    AxisSettings settings;
  };

  // The keys of an include or exclude entry: a non-empty map of axes.
  std::vector<std::pair<std::string, Field>> entry_fields(const Field& entry,
                                                          std::string_view what) const {
    if (!entry.node.IsMap()) {
      reader_.fail(entry, fmt::format("{} must be a map of axis values (e.g. {{mixer: s4d, seq: "
                                      "65536}}), got {}",
                                      what, describe_node(entry.node)));
    }
    auto entries = reader_.map_entries(entry, axis_names(), what);
    if (entries.empty()) {
      reader_.fail(entry, fmt::format("{} names no axis", what));
    }
    return entries;
  }

  Entry read_include_entry(const Field& entry) const {
    Entry result{entry, {}};
    for (const auto& [key, field] : entry_fields(entry, "an include entry")) {
      const Axis axis = *find_axis(key);
      result.settings[static_cast<std::size_t>(axis)] = read_single(axis, field, "include entries");
    }
    return result;
  }

  // An exclude entry: every key must match; a list value matches any of its values.
  struct Exclusion {
    std::vector<std::pair<Axis, std::vector<std::string>>> values;
  };

  Exclusion read_exclude_entry(const Field& entry) const {
    Exclusion exclusion;
    for (const auto& [key, field] : entry_fields(entry, "an exclude entry")) {
      const Axis axis = *find_axis(key);
      std::vector<std::string> texts;
      if (field.node.IsSequence()) {
        for (const Field& item : reader_.list_items(field)) {
          texts.push_back(read_axis(reader_, axis, item).text);
        }
      } else {
        texts.push_back(read_axis(reader_, axis, field).text);
      }
      exclusion.values.emplace_back(axis, std::move(texts));
    }
    return exclusion;
  }

  static bool excluded(const SuiteRun& run, const Exclusion& exclusion) {
    for (const auto& [axis, texts] : exclusion.values) {
      if (std::find(texts.begin(), texts.end(), axis_text(axis, run.bench, run.ranks)) ==
          texts.end()) {
        return false;
      }
    }
    return true;
  }

  void expand() {
    std::vector<PendingRun> pending;
    if (matrix_field_) {
      std::vector<std::size_t> position(matrix_.size(), 0);
      while (true) {
        AxisSettings settings = defaults_;
        for (std::size_t a = 0; a < matrix_.size(); ++a) {
          settings[static_cast<std::size_t>(matrix_[a].first)] = matrix_[a].second[position[a]];
        }
        PendingRun run = resolve(settings, *matrix_field_, "the matrix's runs");
        const bool dropped = std::any_of(exclude_.begin(), exclude_.end(),
                                         [&](const Exclusion& e) { return excluded(run.run, e); });
        if (dropped) {
          ++suite_.excluded_runs;
        } else {
          pending.push_back(std::move(run));
        }
        // The last axis varies fastest.
        std::size_t a = matrix_.size();
        while (a > 0 && ++position[a - 1] == matrix_[a - 1].second.size()) {
          position[--a] = 0;
        }
        if (a == 0) {
          break;
        }
      }
    }
    for (const Entry& entry : include_) {
      AxisSettings settings = defaults_;
      for (std::size_t a = 0; a < kAxisCount; ++a) {
        if (entry.settings[a]) {
          settings[a] = entry.settings[a];
        }
      }
      pending.push_back(resolve(settings, entry.field, "this include entry"));
    }
    if (pending.empty()) {
      LONGSEQ_CHECK(exclude_field_.has_value(), "[suite] a matrix expanded to no runs");
      reader_.fail(*exclude_field_, "removes every run of the suite");
    }
    std::set<std::string> keys;
    for (PendingRun& run : pending) {
      if (!keys.insert(run.run.key).second) {
        ++suite_.duplicate_runs;
        continue;
      }
      check_and_predict(run);
      run.run.index = suite_.runs.size();
      suite_.runs.push_back(std::move(run.run));
    }
  }

  // The run's config from its settings over the defaults; the strategy, where not given, is the
  // mixer's first.
  PendingRun resolve(const AxisSettings& settings, const Field& origin, std::string_view where) {
    PendingRun pending{{}, settings, origin};
    for (const Axis required : {Axis::mixer, Axis::seq}) {
      if (!setting(settings, required)) {
        reader_.fail(origin, fmt::format("no {} for {} (give it here or under defaults)",
                                         axis_name(required), where));
      }
    }
    SuiteRun& run = pending.run;
    BenchConfig& config = run.bench;
    config.reps = repetitions_;
    config.warmup = warmup_;
    config.check = check_;
    config.seed = kDefaultSeed;
    config.mixer_options.seed = kDefaultSeed;
    for (std::size_t a = 0; a < kAxisCount; ++a) {
      if (settings[a]) {
        apply_axis(static_cast<Axis>(a), settings[a]->text, config, run.ranks);
      }
    }
    MixerOptions& options = config.mixer_options;
    if (options.kv_heads == 0) {
      options.kv_heads = options.heads;
    }
    if (!setting(settings, Axis::strategy)) {
      const std::optional<std::vector<std::string>> offered = strategies_of(config);
      if (offered && !offered->empty()) {
        options.strategy = offered->front();
      }
    }
    run.key = run_key(run);
    return pending;
  }

  // The strategies a mixer offers (they do not depend on its options); nullopt where it cannot be
  // built at all to ask (its options are then refused in check_and_predict).
  std::optional<std::vector<std::string>> strategies_of(const BenchConfig& config) {
    const auto cached = strategies_.find(config.mixer);
    if (cached != strategies_.end()) {
      return cached->second;
    }
    MixerOptions own = config.mixer_options;
    own.strategy = MixerOptions{}.strategy;
    MixerOptions small;
    small.heads = 2;
    small.head_dim = 8;
    small.state_size = 8;
    small.features = 8;
    small.causal = true;
    MixerOptions small_non_causal = small;
    small_non_causal.causal = false;
    // Small options first: building a mixer may allocate its parameters.
    for (const MixerOptions& options : {small, small_non_causal, own}) {
      try {
        std::vector<std::string> names = make_mixer(config.mixer, options)->strategies();
        strategies_.emplace(config.mixer, names);
        return names;
      } catch (const UserError&) {
      } catch (const std::bad_alloc&) {
      }
    }
    return std::nullopt;
  }

  // The field of an axis the run sets, or the run's origin for one it leaves at the default.
  static const Field& field_of(const PendingRun& run, Axis axis) {
    const std::optional<AxisSetting>& value = setting(run.settings, axis);
    return value ? value->field : run.origin;
  }

  void check_and_predict(PendingRun& pending) {
    SuiteRun& run = pending.run;
    const BenchConfig& config = run.bench;
    const MixerOptions& options = config.mixer_options;
    if (setting(pending.settings, Axis::strategy)) {
      const std::optional<std::vector<std::string>> offered = strategies_of(config);
      if (offered && offered->empty() && options.strategy != MixerOptions{}.strategy) {
        reader_.fail(field_of(pending, Axis::strategy),
                     fmt::format("mixer '{}' has a single way of distributing and takes no "
                                 "strategy, got '{}'",
                                 config.mixer, options.strategy));
      }
      if (offered && !offered->empty() &&
          std::find(offered->begin(), offered->end(), options.strategy) == offered->end()) {
        reader_.fail(field_of(pending, Axis::strategy),
                     fmt::format("mixer '{}' offers strategies {}, not '{}'", config.mixer,
                                 fmt::join(*offered, ", "), options.strategy));
      }
    }
    if (options.heads % options.kv_heads != 0) {
      reader_.fail(field_of(pending, Axis::kv_heads),
                   fmt::format("{} key/value heads do not divide the {} heads", options.kv_heads,
                               options.heads));
    }
    if (run.ranks > config.seq) {
      reader_.fail(field_of(pending, Axis::ranks),
                   fmt::format("{} ranks for a sequence of {} positions (each rank needs one)",
                               run.ranks, config.seq));
    }
    if (options.strategy == "alltoall" &&
        (options.heads % run.ranks != 0 || options.kv_heads % run.ranks != 0)) {
      reader_.fail(field_of(pending, Axis::ranks),
                   fmt::format("strategy alltoall splits heads over ranks: {} ranks do not divide "
                               "{} heads and {} key/value heads",
                               run.ranks, options.heads, options.kv_heads));
    }
    const Field& mixer_field = field_of(pending, Axis::mixer);
    try {
      predict(run);
    } catch (const UserError& error) {
      reader_.fail(mixer_field, error.what());
    } catch (const std::bad_alloc&) {
      reader_.fail(mixer_field, fmt::format("mixer '{}' with these options does not fit in memory",
                                            config.mixer));
    }
    if (!std::isfinite(run.predicted_flops)) {
      reader_.fail(field_of(pending, Axis::seq), "the run's FLOPs overflow: absurd sizes");
    }
  }

  // Builds the run's mixer (once per distinct set of options) and predicts FLOPs and memory.
  void predict(SuiteRun& run) {
    const BenchConfig& config = run.bench;
    std::string options_key = config.mixer;
    for (std::size_t a = 0; a < kAxisCount; ++a) {
      const auto axis = static_cast<Axis>(a);
      if (axis != Axis::seq && axis != Axis::ranks && axis != Axis::layout && axis != Axis::pass &&
          axis != Axis::check) {
        options_key += ' ';
        options_key += axis_text(axis, config, run.ranks);
      }
    }
    std::unique_ptr<Mixer>& mixer = mixers_[options_key];
    if (!mixer) {
      mixer = make_mixer(config.mixer, config.mixer_options);
    }
    const bool forward = config.pass != "bwd";
    const bool backward = config.pass != "fwd";
    run.predicted_flops = (forward ? mixer->forward_flops(config.seq) : 0.0) +
                          (backward ? mixer->backward_flops(config.seq) : 0.0);

    const SequenceLayout layout(parse_layout(config.layout), config.seq, run.ranks);
    const auto shard_bytes = [&](const std::vector<TensorSpec>& specs) {
      double bytes = 0;
      for (const TensorSpec& spec : specs) {
        double elements = 1;
        for (std::size_t d = 0; d < spec.shape.size(); ++d) {
          elements *= static_cast<double>(
              static_cast<int>(d) == spec.sequence_dim ? layout.shard_length() : spec.shape[d]);
        }
        bytes += elements * static_cast<double>(dtype_size(spec.dtype));
      }
      return bytes;
    };
    const double activations =
        shard_bytes(mixer->input_specs(config.seq)) + shard_bytes(mixer->output_specs(config.seq));
    const double parameters = shard_bytes(mixer->parameter_specs(config.seq));
    const double bytes = backward ? 2 * (activations + parameters) : activations + parameters;
    LONGSEQ_REQUIRE(bytes <= kMaxPredictedBytes,
                    "the run's tensors alone would need {:.3g} bytes per rank: absurd sizes",
                    bytes);
    run.predicted_memory_bytes = static_cast<std::int64_t>(bytes);
  }

  SpecReader reader_;
  Suite suite_;
  std::optional<Field> suite_field_;
  std::optional<Field> matrix_field_;
  std::optional<Field> exclude_field_;
  AxisSettings defaults_;
  std::vector<std::pair<Axis, std::vector<AxisSetting>>> matrix_;
  std::vector<Entry> include_;
  std::vector<Exclusion> exclude_;
  int repetitions_ = kDefaultRepetitions;
  int warmup_ = kDefaultWarmup;
  bool check_ = false;
  std::map<std::string, std::optional<std::vector<std::string>>> strategies_;
  std::map<std::string, std::unique_ptr<Mixer>> mixers_;
};

}  // namespace

Suite load_suite(const std::string& path) { return SuiteLoader(path).load(); }

std::string run_key(const SuiteRun& run) {
  std::string key;
  for (std::size_t a = 0; a < kAxisCount; ++a) {
    const auto axis = static_cast<Axis>(a);
    if (axis != Axis::check) {
      key += fmt::format("{}{}={}", a == 0 ? "" : " ", axis_name(axis),
                         axis_text(axis, run.bench, run.ranks));
    }
  }
  key += fmt::format(" reps={} warmup={} check={}", run.bench.reps, run.bench.warmup,
                     run.bench.check ? 1 : 0);
  return key;
}

}  // namespace longseq
