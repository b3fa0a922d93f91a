// Reading records that come from files, for compare and report: tolerant typed reads (a field may
// be absent or of an unexpected kind), which runs are the same run, and short run labels.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "suites/results/run_record.h"

namespace longseq {

// The field as a number (integer or double), or nullopt when absent or text.
std::optional<double> number_field(const RunRecord& record, std::string_view name);
// The field as text (any kind, as field_text writes it), or "" when absent.
std::string text_field(const RunRecord& record, std::string_view name);

// True unless the record's status says it failed (records without a status, such as those of
// `longseq bench --json`, are measurements).
bool is_ok(const RunRecord& record);

// The configuration fields of a run (the "config" names of run_record.h), in canonical order.
const std::vector<std::string>& config_field_names();

// What identifies a measurement across results files: run_key and pass; for records without a
// run_key, the configuration fields that change what is measured (not reps, warmup or check).
std::string match_key(const RunRecord& record);

// A sequence length in binary multiples where exact: 65536 -> "64K", 1048576 -> "1M", 1000 ->
// "1000".
std::string seq_text(double seq);

// The names among `candidates` whose values (text, absent as "") differ between the records.
std::vector<std::string> varying_fields(const std::vector<const RunRecord*>& records,
                                        const std::vector<std::string>& candidates);

// "flash seq=64K ranks=2 zigzag fwd", then " name=value" for each of `extras`; the match key (cut
// to 60 characters) for records without a mixer.
std::string run_label(const RunRecord& record, const std::vector<std::string>& extras);

}  // namespace longseq
