#include "suites/results/report_plots.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string_view>

#include "runtime/error.h"
#include "suites/results/captured_process.h"
#include "suites/results/plot_script.h"  // generated from plot_results.py: kPlotScript
#include "suites/results/results_file.h"

namespace longseq {

namespace {

std::string last_line(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  const std::size_t newline = text.rfind('\n');
  return std::string(newline == std::string_view::npos ? text : text.substr(newline + 1));
}

// The plot script in a temporary file for the lifetime of this object.
class ScriptFile {
 public:
  ScriptFile() {
    path_ = (std::filesystem::temp_directory_path() / "longseq-plot-XXXXXX.py").string();
    const int fd = ::mkstemps(path_.data(), 3);
    LONGSEQ_CHECK(fd >= 0, "[report] cannot create a temporary file: {}", std::strerror(errno));
    const std::string_view text(kPlotScript);
    std::size_t written = 0;
    while (written < text.size()) {
      const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        const std::string reason = std::strerror(errno);
        ::close(fd);
        ::unlink(path_.c_str());
        LONGSEQ_CHECK(false, "[report] cannot write {}: {}", path_, reason);
      }
      written += static_cast<std::size_t>(n);
    }
    ::close(fd);
  }
  ~ScriptFile() { ::unlink(path_.c_str()); }
  ScriptFile(const ScriptFile&) = delete;
  ScriptFile& operator=(const ScriptFile&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string probe_plot_python() {
  if (::access(kPlotPython, X_OK) != 0) {
    return fmt::format("plots skipped: {} not found", kPlotPython);
  }
  const ProcessOutcome probe = run_process({kPlotPython, "-c", "import matplotlib, h5py"});
  if (probe.exit_code != 0) {
    return fmt::format("plots skipped: {} cannot import matplotlib and h5py ({})", kPlotPython,
                       last_line(probe.output));
  }
  return "";
}

}  // namespace

std::string plots_unavailable_reason() {
  static const std::string reason = probe_plot_python();  // starting Python takes a second or two
  return reason;
}

ReportPlots write_report_plots(const std::string& results_path, const std::string& out_dir) {
  LONGSEQ_REQUIRE(is_results_file(results_path), "{}: no such file", results_path);
  ReportPlots plots;
  plots.skipped = plots_unavailable_reason();
  if (!plots.skipped.empty()) {
    return plots;
  }
  std::error_code error;
  std::filesystem::create_directories(out_dir, error);
  LONGSEQ_REQUIRE(!error, "{}: cannot create the plot folder: {}", out_dir, error.message());
  const ScriptFile script;
  const ProcessOutcome run = run_process({kPlotPython, script.path(), results_path, out_dir});
  LONGSEQ_CHECK(run.exit_code == 0, "[report] the plot script failed with exit code {}: {}",
                run.exit_code, last_line(run.output));
  constexpr std::string_view kWrote = "wrote ";
  std::size_t begin = 0;
  while (begin < run.output.size()) {
    std::size_t end = run.output.find('\n', begin);
    end = end == std::string::npos ? run.output.size() : end;
    const std::string_view line(run.output.data() + begin, end - begin);
    if (line.substr(0, kWrote.size()) == kWrote) {
      plots.files.emplace_back(line.substr(kWrote.size()));
    }
    begin = end + 1;
  }
  if (plots.files.empty()) {
    const std::string said = last_line(run.output);
    plots.skipped =
        fmt::format("plots skipped: {}", said.empty() ? "the plot script wrote nothing" : said);
  }
  return plots;
}

}  // namespace longseq
