#include "suites/report_format.h"

#include <fmt/format.h>

namespace longseq {

namespace {

std::string json_string(const std::string& text) {
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

}  // namespace

std::string result_json(const BenchResult& result, int threads) {
  const AttentionBenchConfig& c = result.config;
  std::string json = "{";
  json += fmt::format(
      "\"mixer\": {}, \"seq\": {}, \"batch\": {}, \"heads\": {}, \"kv_heads\": {}, \"head_dim\": "
      "{}, ",
      json_string(c.mixer), c.seq, c.batch, c.heads, c.kv_heads > 0 ? c.kv_heads : c.heads,
      c.head_dim);
  json += fmt::format(
      "\"causal\": {}, \"ranks\": {}, \"layout\": {}, \"strategy\": {}, \"dtype\": {}, \"device\": "
      "{}, ",
      c.causal, result.ranks, json_string(c.layout), json_string(c.strategy),
      json_string(std::string(dtype_name(c.dtype))),
      json_string(std::string(device_name(c.device))));
  json += fmt::format(
      "\"pass\": {}, \"threads\": {}, \"reps\": {}, \"median_s\": {:.6g}, \"spread\": {:.4g}, ",
      json_string(result.pass), threads, c.reps, result.median_s, result.spread);
  json += fmt::format(
      "\"gflops\": {:.4g}, \"yardstick_gflops\": {:.4g}, \"ratio_to_yardstick\": {:.4g}, ",
      result.gflops, result.yardstick.gflops,
      result.yardstick.gflops > 0 ? result.gflops / result.yardstick.gflops : 0.0);
  json +=
      fmt::format("\"yardstick\": {}, \"flop_convention\": {}, ",
                  json_string(fmt::format("{} n={}", result.yardstick.name, result.yardstick.n)),
                  json_string(attention_flop_convention()));
  json +=
      fmt::format("\"peak_mem_bytes\": {}, \"extra_mem_bytes\": {}, \"resident_extra_bytes\": {}, ",
                  result.peak_mem_bytes, result.extra_mem_bytes, result.resident_extra_bytes);
  json += fmt::format(
      "\"bytes_sent\": {}, \"overlap\": {:.4g}, \"max_rel_err\": {}", result.bytes_sent,
      result.overlap,
      result.max_rel_err ? fmt::format("{:.3g}", *result.max_rel_err) : std::string("null"));
  return json + "}";
}

std::string results_table(const std::vector<BenchResult>& results) {
  std::string table =
      fmt::format("{:<8} {:>8} {:>6} {:>4} {:>11} {:>7} {:>9} {:>7} {:>10} {:>10} {:>9}\n", "mixer",
                  "seq", "causal", "pass", "median_s", "spread", "GFLOP/s", "x yard", "peak MiB",
                  "extra MiB", "rel err");
  for (const BenchResult& r : results) {
    table += fmt::format(
        "{:<8} {:>8} {:>6} {:>4} {:>11.5f} {:>7.3f} {:>9.1f} {:>7.3f} {:>10} {:>10} {:>9}\n",
        r.config.mixer, r.config.seq, r.config.causal ? "yes" : "no", r.pass, r.median_s, r.spread,
        r.gflops, r.yardstick.gflops > 0 ? r.gflops / r.yardstick.gflops : 0.0,
        mebibytes(r.peak_mem_bytes), mebibytes(r.extra_mem_bytes),
        r.max_rel_err ? fmt::format("{:.2e}", *r.max_rel_err) : std::string("-"));
  }
  if (!results.empty()) {
    const Yardstick& y = results.front().yardstick;
    table += fmt::format("yardstick: {} n={} at {:.1f} GFLOP/s (same run); FLOPs: {}\n", y.name,
                         y.n, y.gflops, attention_flop_convention());
  }
  return table;
}

}  // namespace longseq
