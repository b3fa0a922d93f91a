// `longseq suite collect`: merges the results files of a suite's jobs (one per rank count, from
// Slurm) into one. For a measurement (run key and pass) found in several files, a successful
// record wins over a failed one, and the later of two alike.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace longseq {

// `inputs`: results files, or folders whose *.h5 files are taken. Returns the exit code; throws
// UserError on a missing input, a file that is not a results file, or an output that exists and
// is not one.
int collect_results(const std::vector<std::string>& inputs, const std::string& output,
                    std::ostream& out);

}  // namespace longseq
