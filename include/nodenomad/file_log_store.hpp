// FileLogStore: the shipped durable LogStore (nodenomad/log_store.hpp), one
// directory per Raft group, written through the FileSystem seam.
//
// On disk: numbered segment files of checksummed records (the framing of
// DESIGN.md section 5), each segment opening with a restatement of the hard
// state and snapshot metadata so that whole segments can be deleted once a
// snapshot covers their entries. docs/log_store.md explains the design; the
// record layouts are drawn in src/log_store/file_log_store_format.hpp.
//
// Thread safety: every method may be called from any thread. Mutations
// encode their records into memory under a short lock; sync() writes and
// fsyncs without holding it, and concurrent sync() callers share fsyncs
// (group commit): appends that arrive while a sync is in flight are made
// durable by the next one. Readers are never blocked by an fsync.
//
// Ownership: the FileSystem must outlive the store. Two stores must never be
// open on the same directory at once (nothing detects it).
//
// Memory: an index entry per log entry (term and file location, 32 bytes)
// plus records not yet handed to the OS (bounded by max_unwritten_bytes, as a
// batch given to one append() may exceed it). Entry data is read back from
// the files.
//
// Errors: open() answers kCorruption naming the file and offset when a
// record before a segment's torn tail is bad (nothing is modified then),
// kNotSupported for a segment of a newer format, kInvalidArgument for bad
// options, kIOError when the disk refuses. A failed write, fsync, file
// creation or deletion puts the store in the failed state: that sync() (or
// append(), when it had to write) answers the I/O error, and every later
// mutation and sync() answers kFailed. Nothing is retried. Reads keep
// working from what is in memory and on disk.
//
// Crash recovery: a torn tail of the newest segment is cut off and logged
// (warn). A batch of entries is durable entry by entry, so a crash before
// sync() returns may keep any prefix of what was appended since the last
// sync(), never a hole and never a later record without the earlier ones.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "nodenomad/file_system.hpp"
#include "nodenomad/log_store.hpp"

namespace nodenomad {

struct FileLogStoreOptions {
  static constexpr std::uint64_t kDefaultSegmentBytes = 64ull << 20;
  static constexpr std::uint64_t kMinSegmentBytes = 256;
  static constexpr std::uint64_t kMaxSegmentBytes = 4ull << 30;
  static constexpr std::uint64_t kDefaultMaxUnwrittenBytes = 8ull << 20;
  static constexpr std::uint32_t kDefaultMaxIdleReadFiles = 8;

  // A segment is closed and a new one started once it holds this many bytes
  // (it may exceed it by one record). In [kMinSegmentBytes, kMaxSegmentBytes].
  std::uint64_t segment_bytes = kDefaultSegmentBytes;
  // Records appended but not yet written to the OS; past this, append()
  // writes them itself (no fsync) before returning. At least 1.
  std::uint64_t max_unwritten_bytes = kDefaultMaxUnwrittenBytes;
  // Open read handles kept for reuse between entries() calls.
  std::uint32_t max_idle_read_files = kDefaultMaxIdleReadFiles;
};

// Counters for tests and metrics; a consistent snapshot taken under the lock.
struct FileLogStoreStats {
  std::uint64_t sync_calls = 0;            // sync() calls so far
  std::uint64_t fsyncs = 0;                // segment fsyncs (not directory syncs)
  std::uint64_t bytes_written = 0;         // record bytes handed to the OS
  std::uint64_t unwritten_bytes = 0;       // records still held in memory only
  std::uint64_t waiting_sync_callers = 0;  // sync() callers waiting for another's fsync
  std::uint64_t segments_deleted = 0;      // segment files removed by compaction
  std::uint64_t oldest_segment = 0;        // sequence number of the oldest segment kept
  std::uint64_t active_segment = 0;        // sequence number of the segment being written
  bool failed = false;                     // the store is in the failed state
};

class FileLogStore : public LogStore {
 public:
  // Opens (creating if needed) the store in `dir` and recovers its state.
  static Result<std::unique_ptr<FileLogStore>> open(FileSystem& fs, std::string dir,
                                                    FileLogStoreOptions options = {});

  FileLogStore(const FileLogStore&) = delete;
  FileLogStore& operator=(const FileLogStore&) = delete;

  virtual FileLogStoreStats stats() const = 0;
  virtual const std::string& dir() const = 0;

 protected:
  FileLogStore() = default;
};

}  // namespace nodenomad
