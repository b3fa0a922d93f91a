// Results files: every record of a suite's runs in one HDF5 file that h5py reads, written whole
// to a temporary name and renamed over the old file, so that a killed writer leaves the previous
// complete file (and every earlier record) readable.
//
// HDF5 layout (format "longseq-results-1"):
//   /                 attribute format = "longseq-results-1"
//   /runs/000000 ...  one group per record, in order; one scalar attribute per field, named as the
//                     field: int64 -> native int64, double -> native double, string -> fixed-length
//                     C string (UTF-8)
// JSON export: one record_to_json object per line. CSV export: a header of every field name that
// occurs (first-seen order), one row per record, empty cells for absent fields, RFC 4180 quoting.
#pragma once

#include <string>
#include <vector>

#include "suites/results/run_record.h"

namespace longseq {

inline constexpr const char* kResultsFormat = "longseq-results-1";

// Reads a results file: HDF5 as above, or JSON lines (a file whose first non-blank byte is '{';
// blank lines are skipped; an empty file holds no records).
// Throws UserError naming the path when it is missing, unreadable, or not a longseq results file.
std::vector<RunRecord> read_results(const std::string& path);

// True when `path` exists and is a longseq results file (HDF5 with the format attribute, or JSON
// lines of records); false when it does not exist; throws UserError naming the path when it exists
// but is something else, so that callers never overwrite a file that is not theirs.
bool is_results_file(const std::string& path);

// Writes all `records` to `path` (HDF5) through `path`.tmp and a rename. Throws UserError when
// `path` exists and is not a longseq results file (it is left untouched). One writer per path at a
// time (in a multi-rank job, one rank writes).
void write_results(const std::string& path, const std::vector<RunRecord>& records);

// Write the exports described above to `path`, replacing it whole (through `path`.tmp).
void export_json(const std::vector<RunRecord>& records, const std::string& path);
void export_csv(const std::vector<RunRecord>& records, const std::string& path);

}  // namespace longseq
