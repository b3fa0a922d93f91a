// Suite specs: the YAML files that say what `longseq suite` runs (configs/suites/*.yaml).
//
//   suite: quickstart                 # name, required
//   description: text                 # optional
//   defaults:                         # a value for any axis below, used where the matrix has none
//     heads: 8
//     causal: true
//   matrix:                           # axes: a scalar or a non-empty list each; the runs are the
//     mixer: [flash, linear]          # Cartesian product of the lists, in the order written,
//     seq: [1024, 4096]               # the last axis varying fastest
//     ranks: [1, 2, 4]
//   include:                          # optional extra runs: axis values over the defaults
//     - {mixer: s4d, seq: 1048576, ranks: 4}
//   exclude:                          # optional: drop the runs that match every key of an entry
//     - {mixer: flash, seq: 65536}
//   repetitions: 5                    # timed repetitions per run (median reported); default 3
//   warmup: 1                         # untimed repetitions first; default 1
//   check: true                       # error against a single-rank run of the same inputs
//   limits: {timeout: 600, memory: 4GiB}   # per run: seconds, bytes per rank (B, KiB .. TiB)
//   tolerances:                       # what `longseq compare` allows, relative
//     time: 0.10                      # slower by more than 10 % is a regression
//     normalise: yardstick            # compare time x yardstick GFLOP/s (or: none)
//     memory: 0.0                     # peak memory per rank, bytes sent
//     error: 1.0e-4                   # max_rel_err may grow by this much (absolute)
//   slurm: {partition: gpu, account: proj, time: "01:00:00", nodes: 1, gpus_per_task: 1,
//           cpus_per_task: 8, array: false}
//
// Axes (also allowed under defaults, include and exclude): mixer, seq, batch, heads, kv_heads,
// head_dim, causal, ranks, layout, strategy, dtype, device, pass, seed, features, redraw_interval,
// state_size, local_chunk, momentum, momentum_step, and check (a run's own, over the suite's
// check). A run without a strategy takes the mixer's first one (mixers with one way of
// distributing ignore it).
//
// Validation happens on load, before anything runs or is written: unknown keys, wrong types,
// empty lists, unknown mixers, layouts, strategies, dtypes, devices or passes, and impossible
// combinations (heads not divisible by ranks for all-to-all, a strategy the mixer does not offer,
// a mixer that refuses its options, fewer positions than ranks, an include or exclude entry that
// names no axis) are UserErrors of one line: "FILE:LINE:COLUMN: KEY: what is wrong", with the
// position of the offending value (1-based) and the key's dotted path (e.g. "matrix.seq[2]"; list
// indices count from 0).
//
// Details of the schema:
//   - Top-level keys: suite, description, defaults, matrix, include, exclude, repetitions, warmup,
//     check, limits, tolerances, slurm. Every run needs a mixer and a seq (from the matrix, an
//     include entry or defaults); a suite needs a matrix, include entries, or both.
//   - Values: integers are plain (unquoted) integers, booleans true or false; dtype is fp32, bf16,
//     fp16 or fp64; a suite name is 1-64 letters, digits, '_', '-' or '.'. Memory takes a plain
//     integer of bytes or a number with a unit ("4GiB", "1.5 MiB"); timeout is positive seconds.
//     Slurm time is in Slurm's formats (minutes, "HH:MM:SS", "D-HH:MM:SS", ...).
//   - Order: the matrix product in the order written, last axis fastest; then excluded runs are
//     dropped (exclude applies to the matrix only; a value in an exclude entry may be a list,
//     matching any of its values; an entry that matches nothing is fine, one that removes every
//     run is an error); then the include entries in order; then duplicates (equal keys) are
//     dropped, keeping the first. Runs are checked as a whole (strategy, heads, ranks, the mixer's
//     own checks) after this, so exclude can remove combinations that are impossible.
//   - Defaults of the runs: those of BenchConfig and MixerOptions, except repetitions 3, seed 1
//     (also the mixer's seed), kv_heads = heads, and strategy = the mixer's first strategy (a
//     mixer without strategies keeps MixerOptions' default, and takes no other value).
//   - Device availability is not checked: a GPU suite is planned on any machine.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "suites/mixer_bench.h"

namespace longseq {

struct RunLimits {
  double timeout_s = 0;           // 0: none
  std::int64_t memory_bytes = 0;  // per rank; 0: none
};

struct Tolerances {
  double time = 0.10;
  bool normalise_by_yardstick = true;
  double memory = 0.0;
  double error = 1.0e-4;
};

struct SlurmSettings {
  std::string partition;  // empty: the cluster's default
  std::string account;    // empty: none
  std::string time = "01:00:00";
  int nodes = 0;  // 0: as many as the tasks need (Slurm decides)
  int gpus_per_task = 0;
  int cpus_per_task = 0;  // 0: not set
  bool array = false;     // one job array with a task per rank count instead of a job each
};

// One run: one `longseq bench` measurement on `ranks` ranks.
struct SuiteRun {
  std::size_t index = 0;  // position in the expansion
  int ranks = 1;
  BenchConfig bench;  // mixer, seq, layout, pass, reps, warmup, check, seed, options
  std::string key;    // canonical config text: equal keys mean the same run
  // Every pass the run measures (both: forward + backward), one repetition, all ranks, by the
  // mixer's flop_convention() (Mixer::forward_flops / backward_flops).
  double predicted_flops = 0;
  // Per rank: the tensors of the measurement, this rank's shards of the inputs and outputs, plus
  // the gradients of both when backward is measured, plus the parameters (twice with backward:
  // values and gradients). A lower bound of the peak: a mixer's working memory comes on top.
  std::int64_t predicted_memory_bytes = 0;
};

struct Suite {
  std::string name;
  std::string description;
  std::string path;  // the file it was loaded from
  std::vector<SuiteRun> runs;
  RunLimits limits;
  Tolerances tolerances;
  SlurmSettings slurm;
  std::size_t excluded_runs = 0;   // matrix runs dropped by exclude
  std::size_t duplicate_runs = 0;  // runs dropped because an earlier run had the same key
};

// Loads, validates and expands a suite file. Throws UserError as described above.
Suite load_suite(const std::string& path);

// The canonical key of a run (used for resume and for matching runs in `compare`): its config
// fields in a fixed order, "mixer=flash seq=4096 batch=1 ... ranks=2 ...". The order, stable
// across versions (new fields only ever go at the end): mixer seq batch heads kv_heads head_dim
// causal ranks layout strategy dtype device pass seed features redraw_interval state_size
// local_chunk momentum momentum_step reps warmup check. Booleans are 1 or 0, kv_heads is resolved
// (never 0), dtypes by dtype_name ("fp32"), doubles printed with %.17g.
std::string run_key(const SuiteRun& run);

// `longseq suite plan`: the expanded runs, one per line, with predicted FLOPs and memory per rank,
// grouped by rank count (one MPI job each), and the totals; at most 100 columns wide.
std::string plan_text(const Suite& suite);

}  // namespace longseq
