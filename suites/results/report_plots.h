// The plots of `longseq report`: the embedded plot script (plot_results.py) run by the system's
// Python with matplotlib and h5py. Optional: without them the report is its tables alone.
#pragma once

#include <string>
#include <vector>

namespace longseq {

struct ReportPlots {
  std::vector<std::string> files;  // the PNG and SVG files written
  std::string skipped;             // why there are no plots, one line; "" when files were written
};

// The Python that runs the plot script.
inline constexpr const char* kPlotPython = "/usr/bin/python3";

// Writes the plots of the results file at `results_path` (HDF5 or JSON lines) into `out_dir`
// (created when missing). When kPlotPython is absent or cannot import matplotlib and h5py, or the
// file holds no successful run, returns the reason in `skipped` instead. Throws UserError when
// `out_dir` cannot be created, Error when the script fails.
ReportPlots write_report_plots(const std::string& results_path, const std::string& out_dir);

// Why the plots cannot be made on this machine ("" when they can); probed once per process.
std::string plots_unavailable_reason();

}  // namespace longseq
