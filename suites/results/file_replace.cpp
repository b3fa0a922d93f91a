#include "suites/results/file_replace.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "runtime/error.h"

namespace longseq {

namespace {

std::string errno_text() { return std::strerror(errno); }

void sync_path(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);  // best effort: some file systems refuse to sync a folder
    ::close(fd);
  }
}

std::string folder_of(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  if (slash == std::string::npos) {
    return ".";
  }
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

void replace_file(const std::string& path, const std::function<void(const std::string&)>& write) {
  const std::string temporary = path + ".tmp";
  if (::unlink(temporary.c_str()) != 0 && errno != ENOENT) {
    throw UserError(
        fmt::format("{}: cannot remove the stale {}: {}", path, temporary, errno_text()));
  }
  // Creating the file here turns a missing folder or a missing permission into one clear line.
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw UserError(fmt::format("{}: cannot create {}: {}", path, temporary, errno_text()));
  }
  ::close(fd);
  try {
    write(temporary);
  } catch (...) {
    ::unlink(temporary.c_str());
    throw;
  }
  sync_path(temporary, O_RDONLY);
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const std::string reason = errno_text();
    ::unlink(temporary.c_str());
    throw UserError(fmt::format("{}: cannot replace it with {}: {}", path, temporary, reason));
  }
  sync_path(folder_of(path), O_RDONLY | O_DIRECTORY);
}

void replace_file_text(const std::string& path, const std::string& text) {
  replace_file(path, [&](const std::string& temporary) {
    const int fd = ::open(temporary.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0) {
      throw UserError(fmt::format("{}: cannot open {}: {}", path, temporary, errno_text()));
    }
    std::size_t written = 0;
    while (written < text.size()) {
      const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0) {
        const std::string reason = errno_text();
        ::close(fd);
        throw UserError(fmt::format("{}: cannot write {}: {}", path, temporary, reason));
      }
      written += static_cast<std::size_t>(n);
    }
    if (::close(fd) != 0) {
      throw UserError(fmt::format("{}: cannot write {}: {}", path, temporary, errno_text()));
    }
  });
}

}  // namespace longseq
