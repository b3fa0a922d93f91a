// The HDF5 form of a results file (layout in results_file.h): records to and from one file.
#pragma once

#include <string>
#include <vector>

#include "suites/results/run_record.h"

namespace longseq {

// Returns when the HDF5 file at `path` carries the results format attribute; throws UserError
// naming the path when it cannot be opened, has no format attribute, or another format.
void check_results_hdf5(const std::string& path);

// Reads every record, in order. Throws UserError naming the path for anything but a complete
// longseq results file (attributes of other types, missing groups, damaged HDF5).
std::vector<RunRecord> read_results_hdf5(const std::string& path);

// Creates (truncates) `path` and writes `records` into it.
void write_results_hdf5(const std::string& path, const std::vector<RunRecord>& records);

}  // namespace longseq
