// FileSystem: the seam between NodeNomad's storage code and the disk.
//
// Everything that touches a file (the storage engine's WAL and snapshots, the
// file log store) goes through this interface, so that tests and the
// simulator can swap the real disk for FaultInjectingFileSystem
// (nodenomad/testing/), which loses unsynced data on a simulated crash, tears
// writes, and fails a chosen write or sync.
//
// Durability contract (what callers may rely on, and nothing more):
//   - Bytes appended to a file are durable only after that file's sync()
//     returns OK.
//   - A new file's name, a rename() and a remove() are durable only after
//     sync_dir() of the directory holding the name returns OK.
//   - A failed sync() leaves the file in an unknown state: the caller must
//     stop trusting it (never retry and carry on; see STYLE.md point 4).
//   - Directories made by create_dirs() are durable when it returns.
//
// Thread safety: a FileSystem may be used from many threads at once. A single
// WritableFile or ReadableFile is used by one thread at a time.
//
// Ownership: files are returned as unique_ptr and closed when destroyed; the
// FileSystem must outlive every file it opened.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "nodenomad/status.hpp"

namespace nodenomad {

class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Appends `data` at the end of the file (buffered by the OS, not durable).
  virtual Status append(std::string_view data) = 0;
  // Makes every byte appended so far durable (fdatasync).
  virtual Status sync() = 0;
  // Starts writing the bytes appended since the last call to the device
  // without waiting for them (Linux: sync_file_range WRITE): a writer of a
  // large file calls it every few MiB, so that dirty pages never pile up
  // and neither its own sync() nor another file's fsync on the same disk
  // meets a burst of them (RocksDB's bytes_per_sync). Durability still
  // takes sync(). The default does nothing.
  virtual Status start_writeback() { return Status::ok(); }
  // Asks the OS to drop from its page cache (Linux: posix_fadvise
  // DONTNEED) the bytes before `before` that the last sync() made durable,
  // for a large file nobody reads back soon: a restore's snapshot file is
  // read again only at the next start; a log's entries that every replica
  // holds and this one applied, only by a restart or a peer that fell
  // behind. Its pages then go back to the allocator at once, and the next
  // appends reuse them, instead of the file holding a page of memory per
  // page written until memory runs short. Advisory: it changes no byte, and
  // the default does nothing.
  static constexpr std::uint64_t kAllSynced = ~std::uint64_t{0};
  virtual void drop_synced(std::uint64_t before = kAllSynced) { (void)before; }
  // Closes the handle; further calls fail. Destruction closes implicitly.
  virtual Status close() = 0;
  // Size of the file in bytes, counting bytes appended through this handle.
  virtual std::uint64_t size() const = 0;
  virtual const std::string& path() const = 0;
};

class ReadableFile {
 public:
  virtual ~ReadableFile() = default;
  // Reads up to dst.size() bytes at `offset`; returns how many were read
  // (fewer only at the end of the file, 0 at or past it).
  virtual Result<std::size_t> read_at(std::uint64_t offset, std::span<char> dst) = 0;
  virtual Result<std::uint64_t> size() = 0;
  virtual const std::string& path() const = 0;
};

enum class WriteMode {
  kTruncate,  // create, or empty an existing file
  kAppend,    // create, or keep an existing file's bytes and append after them
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  virtual Result<std::unique_ptr<WritableFile>> open_writable(const std::string& path,
                                                              WriteMode mode) = 0;
  // NotFound if the file does not exist.
  virtual Result<std::unique_ptr<ReadableFile>> open_readable(const std::string& path) = 0;

  // Atomically replaces `to` with `from` (POSIX rename semantics).
  virtual Status rename(const std::string& from, const std::string& to) = 0;
  // Removes a file. NotFound if it does not exist.
  virtual Status remove(const std::string& path) = 0;
  // Cuts a file to `size` bytes and makes the new size durable.
  virtual Status truncate(const std::string& path, std::uint64_t size) = 0;
  // The names (not paths) of the entries of `dir`, sorted bytewise.
  virtual Result<std::vector<std::string>> list(const std::string& dir) = 0;
  // mkdir -p; OK if the directory already exists.
  virtual Status create_dirs(const std::string& dir) = 0;
  // Removes a directory and everything under it; OK if it does not exist.
  virtual Status remove_all(const std::string& dir) = 0;
  // Makes the directory's entries (creations, renames, removals) durable.
  virtual Status sync_dir(const std::string& dir) = 0;
  virtual Result<bool> exists(const std::string& path) = 0;
  virtual Result<std::uint64_t> file_size(const std::string& path) = 0;
};

// The real disk, through POSIX calls. Errors name the path and errno text.
class PosixFileSystem final : public FileSystem {
 public:
  Result<std::unique_ptr<WritableFile>> open_writable(const std::string& path,
                                                      WriteMode mode) override;
  Result<std::unique_ptr<ReadableFile>> open_readable(const std::string& path) override;
  Status rename(const std::string& from, const std::string& to) override;
  Status remove(const std::string& path) override;
  Status truncate(const std::string& path, std::uint64_t size) override;
  Result<std::vector<std::string>> list(const std::string& dir) override;
  Status create_dirs(const std::string& dir) override;
  Status remove_all(const std::string& dir) override;
  Status sync_dir(const std::string& dir) override;
  Result<bool> exists(const std::string& path) override;
  Result<std::uint64_t> file_size(const std::string& path) override;

  // A process-wide instance, for callers that inject nothing.
  static PosixFileSystem& instance();
};

// Forwards every call to another FileSystem, so that a test double derives
// from it and overrides only the calls it changes (LevelDB's EnvWrapper).
// The inner FileSystem is not owned and must outlive the wrapper.
class FileSystemWrapper : public FileSystem {
 public:
  explicit FileSystemWrapper(FileSystem& inner) : inner_(inner) {}

  Result<std::unique_ptr<WritableFile>> open_writable(const std::string& path,
                                                      WriteMode mode) override {
    return inner_.open_writable(path, mode);
  }
  Result<std::unique_ptr<ReadableFile>> open_readable(const std::string& path) override {
    return inner_.open_readable(path);
  }
  Status rename(const std::string& from, const std::string& to) override {
    return inner_.rename(from, to);
  }
  Status remove(const std::string& path) override { return inner_.remove(path); }
  Status truncate(const std::string& path, std::uint64_t size) override {
    return inner_.truncate(path, size);
  }
  Result<std::vector<std::string>> list(const std::string& dir) override {
    return inner_.list(dir);
  }
  Status create_dirs(const std::string& dir) override { return inner_.create_dirs(dir); }
  Status remove_all(const std::string& dir) override { return inner_.remove_all(dir); }
  Status sync_dir(const std::string& dir) override { return inner_.sync_dir(dir); }
  Result<bool> exists(const std::string& path) override { return inner_.exists(path); }
  Result<std::uint64_t> file_size(const std::string& path) override {
    return inner_.file_size(path);
  }

 protected:
  FileSystem& inner() { return inner_; }

 private:
  FileSystem& inner_;
};

// Forwards every call to an owned WritableFile; the file half of a wrapper.
class WritableFileWrapper : public WritableFile {
 public:
  explicit WritableFileWrapper(std::unique_ptr<WritableFile> inner) : inner_(std::move(inner)) {}

  Status append(std::string_view data) override { return inner_->append(data); }
  Status sync() override { return inner_->sync(); }
  Status start_writeback() override { return inner_->start_writeback(); }
  void drop_synced(std::uint64_t before = kAllSynced) override { inner_->drop_synced(before); }
  Status close() override { return inner_->close(); }
  std::uint64_t size() const override { return inner_->size(); }
  const std::string& path() const override { return inner_->path(); }

 protected:
  WritableFile& inner() { return *inner_; }

 private:
  std::unique_ptr<WritableFile> inner_;
};

// Joins two path parts with exactly one '/'.
std::string join_path(std::string_view dir, std::string_view name);
// The directory part of a path ("a/b/c" -> "a/b", "c" -> ".").
std::string parent_dir(std::string_view path);

// Reads a whole file into memory (for small files: metadata, hard state).
Result<std::string> read_whole_file(FileSystem& fs, const std::string& path);

// Writes `data` to `path` so that after a crash the file holds either its
// old content or `data`, never a mix: write `path.tmp`, sync it, rename over
// `path`, sync the directory.
Status write_file_atomically(FileSystem& fs, const std::string& path, std::string_view data);

}  // namespace nodenomad
