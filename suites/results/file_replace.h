// Replacing a file whole: the new content goes to PATH.tmp, is synced to disk and renamed over
// PATH, so that PATH always holds either its previous complete content or the new one, even when
// the writer is killed part-way.
#pragma once

#include <functional>
#include <string>

namespace longseq {

// Calls `write(temporary_path)` to write the new content into PATH.tmp (a stale PATH.tmp left by a
// killed writer is removed first), then syncs it and renames it over `path`. When `write` throws,
// PATH.tmp is removed and PATH left as it was. A path that cannot be written (missing folder, no
// permission) is a UserError naming it.
void replace_file(const std::string& path, const std::function<void(const std::string&)>& write);

// replace_file with `text` as the new content.
void replace_file_text(const std::string& path, const std::string& text);

}  // namespace longseq
