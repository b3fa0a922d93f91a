#include "suites/report_format.h"

#include <fmt/format.h>

namespace longseq {

namespace {

std::string json_string(std::string_view text) {
  std::string escaped = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      escaped += '\\';
    }
    escaped += c;
  }
  return escaped + "\"";
}

std::string mebibytes(std::int64_t bytes) {
  return fmt::format("{:.1f}", static_cast<double>(bytes) / (1 << 20));
}

double ratio(const BenchResult& r) {
  return r.yardstick.gflops > 0 ? r.gflops / r.yardstick.gflops : 0.0;
}

}  // namespace

std::string result_json(const BenchResult& r, int threads) {
  const BenchConfig& c = r.config;
  const MixerOptions& m = c.mixer_options;
  std::string json = "{";
  json += fmt::format(
      "\"mixer\": {}, \"seq\": {}, \"batch\": {}, \"heads\": {}, \"kv_heads\": {}, \"head_dim\": "
      "{}, ",
      json_string(c.mixer), c.seq, m.batch, m.heads, m.kv_heads > 0 ? m.kv_heads : m.heads,
      m.head_dim);
  json += fmt::format(
      "\"causal\": {}, \"ranks\": {}, \"layout\": {}, \"strategy\": {}, \"dtype\": {}, \"device\": "
      "{}, ",
      m.causal, r.ranks, json_string(c.layout), json_string(m.strategy),
      json_string(dtype_name(m.dtype)), json_string(device_name(m.device)));
  // The mechanism settings, so that a record says everything the run depended on.
  json += fmt::format(
      "\"seed\": {}, \"features\": {}, \"redraw_interval\": {}, \"state_size\": {}, "
      "\"local_chunk\": {}, \"momentum\": {}, \"momentum_step\": {}, ",
      c.seed, m.features, m.redraw_interval, m.state_size, m.local_chunk, m.momentum,
      m.momentum_step);
  json += fmt::format(
      "\"pass\": {}, \"threads\": {}, \"reps\": {}, \"median_s\": {:.6g}, \"spread\": {:.4g}, ",
      json_string(r.pass), threads, c.reps, r.median_s, r.spread);
  json += fmt::format(
      "\"gflops\": {:.4g}, \"yardstick_gflops\": {:.4g}, \"ratio_to_yardstick\": {:.4g}, ",
      r.gflops, r.yardstick.gflops, ratio(r));
  json += fmt::format("\"yardstick\": {}, \"flop_convention\": {}, ",
                      json_string(fmt::format("{} n={}", r.yardstick.name, r.yardstick.n)),
                      json_string(r.flop_convention));
  json +=
      fmt::format("\"peak_mem_bytes\": {}, \"extra_mem_bytes\": {}, \"resident_extra_bytes\": {}, ",
                  r.peak_mem_bytes, r.extra_mem_bytes, r.resident_extra_bytes);
  json += fmt::format(
      "\"bytes_sent\": {}, \"overlap\": {:.4g}, \"compute_max_s\": {:.6g}, "
      "\"compute_min_s\": {:.6g}, \"max_rel_err\": {}",
      r.bytes_sent, r.overlap, r.compute_max_s, r.compute_min_s,
      r.max_rel_err ? fmt::format("{:.3g}", *r.max_rel_err) : std::string("null"));
  return json + "}";
}

std::string results_table(const std::vector<BenchResult>& results) {
  std::string table = fmt::format(
      "{:<8} {:>8} {:>5} {:>10} {:>6} {:>4} {:>10} {:>7} {:>8} {:>7} {:>9} {:>9} {:>10} {:>7} "
      "{:>9}\n",
      "mixer", "seq", "ranks", "layout", "causal", "pass", "median_s", "spread", "GFLOP/s",
      "x yard", "peak MiB", "extra MiB", "sent MiB", "overlap", "rel err");
  for (const BenchResult& r : results) {
    table += fmt::format(
        "{:<8} {:>8} {:>5} {:>10} {:>6} {:>4} {:>10.5f} {:>7.3f} {:>8.1f} {:>7.3f} {:>9} {:>9} "
        "{:>10} {:>7.2f} {:>9}\n",
        r.config.mixer, r.config.seq, r.ranks, r.config.layout,
        r.config.mixer_options.causal ? "yes" : "no", r.pass, r.median_s, r.spread, r.gflops,
        ratio(r), mebibytes(r.peak_mem_bytes), mebibytes(r.extra_mem_bytes),
        mebibytes(r.bytes_sent), r.overlap,
        r.max_rel_err ? fmt::format("{:.2e}", *r.max_rel_err) : std::string("-"));
  }
  if (!results.empty()) {
    const Yardstick& y = results.front().yardstick;
    table += fmt::format("yardstick: {} n={} at {:.1f} GFLOP/s (same run); FLOPs: {}\n", y.name,
                         y.n, y.gflops, results.front().flop_convention);
  }
  return table;
}

}  // namespace longseq
