// PosixFileSystem: the FileSystem seam over open/pwrite/fdatasync/rename.
// Every error names the path and the errno text; EINTR is retried, short
// writes are continued, and a failed fdatasync is reported as is (the caller
// must treat the file as lost, never retry).
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "nodenomad/file_system.hpp"

namespace nodenomad {
namespace {

// A bound on how many parent directories a path walk visits.
constexpr int kMaxPathDepth = 256;

Status errno_status(std::string_view what, const std::string& path, int err) {
  std::string msg = fmt::format("{} {}: {}", what, path, std::strerror(err));
  if (err == ENOENT) return Status::not_found(std::move(msg));
  return Status::io_error(std::move(msg));
}

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd, std::uint64_t size)
      : path_(std::move(path)), fd_(fd), size_(size) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status append(std::string_view data) override {
    if (fd_ < 0) return Status::io_error(fmt::format("append to closed file {}", path_));
    const char* p = data.data();
    std::size_t left = data.size();
    while (left > 0) {
      const ssize_t n = ::write(fd_, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno_status("write", path_, errno);
      }
      p += n;
      left -= static_cast<std::size_t>(n);
      size_ += static_cast<std::uint64_t>(n);
    }
    return Status::ok();
  }

  Status sync() override {
    if (fd_ < 0) return Status::io_error(fmt::format("sync of closed file {}", path_));
    if (::fdatasync(fd_) != 0) return errno_status("fdatasync", path_, errno);
    synced_ = size_;
    return Status::ok();
  }

  void drop_synced(std::uint64_t before = kAllSynced) override {
    const std::uint64_t end = std::min(before, synced_);
    if (fd_ < 0 || end <= dropped_) return;
    // Only EBADF, EINVAL and ESPIPE can fail it, none of which a regular
    // open file gives; and it is advice: a failure loses nothing.
    (void)::posix_fadvise(fd_, static_cast<off_t>(dropped_), static_cast<off_t>(end - dropped_),
                          POSIX_FADV_DONTNEED);
    // The kernel keeps a page the range covers only in part; the next call
    // starts at that page, so that a file dropped in many small steps
    // leaves no page behind at each step's end.
    static const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    dropped_ = end / page * page;
  }

  Status start_writeback() override {
    if (fd_ < 0) return Status::io_error(fmt::format("writeback of closed file {}", path_));
    if (size_ <= written_back_) return Status::ok();
#ifdef __linux__
    if (::sync_file_range(fd_, static_cast<off_t>(written_back_),
                          static_cast<off_t>(size_ - written_back_), SYNC_FILE_RANGE_WRITE) != 0) {
      return errno_status("sync_file_range", path_, errno);
    }
#endif
    written_back_ = size_;
    return Status::ok();
  }

  Status close() override {
    if (fd_ < 0) return Status::ok();
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return errno_status("close", path_, errno);
    return Status::ok();
  }

  std::uint64_t size() const override { return size_; }
  const std::string& path() const override { return path_; }

 private:
  std::string path_;
  int fd_;
  std::uint64_t size_;
  std::uint64_t written_back_ = 0;  // start_writeback() covered [0, written_back_)
  std::uint64_t synced_ = 0;        // the last sync() covered [0, synced_)
  std::uint64_t dropped_ = 0;       // drop_synced() covered [0, dropped_), whole pages
};

class PosixReadableFile final : public ReadableFile {
 public:
  PosixReadableFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixReadableFile() override { ::close(fd_); }

  Result<std::size_t> read_at(std::uint64_t offset, std::span<char> dst) override {
    std::size_t filled = 0;
    while (filled < dst.size()) {
      const ssize_t n = ::pread(fd_, dst.data() + filled, dst.size() - filled,
                                static_cast<off_t>(offset + filled));
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno_status("read", path_, errno);
      }
      if (n == 0) break;
      filled += static_cast<std::size_t>(n);
    }
    return filled;
  }

  Result<std::uint64_t> size() override {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return errno_status("stat", path_, errno);
    return static_cast<std::uint64_t>(st.st_size);
  }

  const std::string& path() const override { return path_; }

 private:
  std::string path_;
  int fd_;
};

Status fsync_path(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return errno_status("open", path, errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return errno_status("fsync", path, err);
  return Status::ok();
}

}  // namespace

Result<std::unique_ptr<WritableFile>> PosixFileSystem::open_writable(const std::string& path,
                                                                     WriteMode mode) {
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC;
  flags |= mode == WriteMode::kTruncate ? O_TRUNC : O_APPEND;
  const int fd = ::open(path.c_str(), flags, 0644);
  if (fd < 0) return errno_status("open for writing", path, errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return errno_status("stat", path, err);
  }
  return std::unique_ptr<WritableFile>(
      std::make_unique<PosixWritableFile>(path, fd, static_cast<std::uint64_t>(st.st_size)));
}

Result<std::unique_ptr<ReadableFile>> PosixFileSystem::open_readable(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_status("open for reading", path, errno);
  return std::unique_ptr<ReadableFile>(std::make_unique<PosixReadableFile>(path, fd));
}

Status PosixFileSystem::rename(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return errno_status("rename", fmt::format("{} -> {}", from, to), errno);
  }
  return Status::ok();
}

Status PosixFileSystem::remove(const std::string& path) {
  if (::unlink(path.c_str()) != 0) return errno_status("remove", path, errno);
  return Status::ok();
}

Status PosixFileSystem::truncate(const std::string& path, std::uint64_t size) {
  if (::truncate(path.c_str(), static_cast<off_t>(size)) != 0) {
    return errno_status("truncate", path, errno);
  }
  return fsync_path(path, O_WRONLY);
}

Result<std::vector<std::string>> PosixFileSystem::list(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return errno_status("list", dir, errno);
  std::vector<std::string> names;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name(e->d_name);
    if (name != "." && name != "..") names.emplace_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

Status PosixFileSystem::create_dirs(const std::string& dir) {
  // Find the deepest ancestor that already exists: the new directories'
  // entries live in it and below it, and only those need syncing.
  std::string existing = dir;
  for (int depth = 0; depth < kMaxPathDepth; ++depth) {
    NN_ASSIGN_OR_RETURN(bool found, exists(existing));
    if (found || existing == "/" || existing == ".") break;
    existing = parent_dir(existing);
  }
  if (existing == dir) return Status::ok();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::io_error(fmt::format("create directory {}: {}", dir, ec.message()));
  for (std::string path = dir; path != existing;) {
    path = parent_dir(path);
    NN_RETURN_IF_ERROR(sync_dir(path));
  }
  return Status::ok();
}

Status PosixFileSystem::remove_all(const std::string& dir) {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (ec) return Status::io_error(fmt::format("remove {}: {}", dir, ec.message()));
  return Status::ok();
}

Status PosixFileSystem::sync_dir(const std::string& dir) {
  return fsync_path(dir, O_RDONLY | O_DIRECTORY);
}

Result<bool> PosixFileSystem::exists(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) return true;
  if (errno == ENOENT) return false;
  return errno_status("stat", path, errno);
}

Result<std::uint64_t> PosixFileSystem::file_size(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return errno_status("stat", path, errno);
  return static_cast<std::uint64_t>(st.st_size);
}

PosixFileSystem& PosixFileSystem::instance() {
  static PosixFileSystem fs;
  return fs;
}

}  // namespace nodenomad
