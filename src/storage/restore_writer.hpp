// RestoreFileWriter: writes the snapshot file of a restore (restore-<index>.tmp)
// off the thread that receives the snapshot's chunks.
//
// Why: a restore arrives on the node's event loop, chunk by chunk. Writing
// each chunk to the file there (copying it into the page cache) and syncing
// the whole file at the end cost 0.6-2.1 s per GiB of that loop's time
// (docs/benchmarks.md, migration_bench). With a thread, append() only copies
// the chunk into a bounded queue; the writer thread appends it to the file
// and syncs the file every sync_every_bytes, so the sync in
// EngineCore::install_restored has at most that much left to write.
//
// Errors: the first failed append or sync is kept and answered by every later
// append() and by finish(), so it is never lost; sync_failed() says whether
// it was a sync (the engine must then fail: STYLE.md point 4). After an error
// nothing more is written.
//
// Bounds: at most max_queued_bytes are queued but not yet written (append()
// waits for the writer beyond that; a single larger chunk is let through when
// nothing is queued), plus kPooledBuffers spare buffers of at most
// kMaxPooledBufferBytes each, reused so that a chunk costs no allocation.
//
// Threads: the writer thread (one per restore, started by the first append)
// is the only user of the file until finish() or the destructor joins it.
// Without a thread (options.use_thread false, for a deterministic simulator)
// append() writes and syncs on the calling thread, in the same order and at
// the same points. A RestoreFileWriter itself is used by one thread at a
// time.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "nodenomad/file_system.hpp"
#include "nodenomad/status.hpp"

namespace nodenomad::storage {

struct RestoreWriterOptions {
  bool use_thread = true;
  std::size_t max_queued_bytes = 64u << 20;
  // Sync the file every time this many bytes were appended since the last
  // sync; 0: only the final sync (the caller's).
  std::uint64_t sync_every_bytes = 64u << 20;
  // Start the writeback of what was appended every time this many bytes
  // were appended since (WritableFile::start_writeback); 0: never.
  std::uint64_t writeback_every_bytes = 1u << 20;
};

class RestoreFileWriter {
 public:
  RestoreFileWriter(std::unique_ptr<WritableFile> file, RestoreWriterOptions options);
  // Stops the writer without writing what is still queued, joins it and
  // closes the file (the caller removes it).
  ~RestoreFileWriter();
  RestoreFileWriter(const RestoreFileWriter&) = delete;
  RestoreFileWriter& operator=(const RestoreFileWriter&) = delete;

  // Queues a copy of `chunk` for the file (with a thread), or appends it
  // (without). The first error of any earlier append or sync, if any.
  Status append(std::string_view chunk);
  // Waits until every queued chunk is written, stops the writer, and hands
  // the file back (appended, synced up to the last progressive sync; the
  // caller makes the final sync). The first error instead, if any; then the
  // file stays here and is closed by the destructor. Called at most once.
  Result<std::unique_ptr<WritableFile>> finish();

  // After an error: whether it came from a sync.
  bool sync_failed() const;
  // Progressive syncs made so far, and bytes queued or being written (tests).
  std::uint64_t syncs() const;
  std::size_t queued_bytes() const;

  static constexpr std::size_t kPooledBuffers = 4;
  static constexpr std::size_t kMaxPooledBufferBytes = 4u << 20;

 private:
  void run();  // the writer thread
  // Appends `chunk` to the file and syncs when due; records the first error.
  // Called by the writer thread, or by append() without one.
  void write_out(std::string_view chunk);
  // Stops the thread (after the queue is written, unless `abandon`) and joins it.
  void stop_thread(bool abandon);

  const RestoreWriterOptions options_;
  std::unique_ptr<WritableFile> file_;
  std::uint64_t unsynced_bytes_ = 0;  // written by whoever writes the file
  std::uint64_t unflushed_bytes_ = 0;  // since the last start_writeback(); ditto

  mutable std::mutex mu_;
  std::condition_variable work_cv_;   // the writer waits for chunks or stop_
  std::condition_variable space_cv_;  // append() waits for queue space
  std::deque<std::string> queue_;     // guarded by mu_
  std::size_t queued_bytes_ = 0;      // queued or being written; guarded by mu_
  std::vector<std::string> pool_;     // spare buffers; guarded by mu_
  Status error_;                      // the first error; guarded by mu_
  bool sync_error_ = false;           // guarded by mu_
  std::uint64_t syncs_ = 0;           // guarded by mu_
  bool stop_ = false;                 // guarded by mu_
  bool abandon_ = false;              // guarded by mu_
  bool finished_ = false;
  std::thread thread_;
};

}  // namespace nodenomad::storage
