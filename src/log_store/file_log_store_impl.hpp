// The FileLogStore behind the public header: how records flow from a
// mutation to the disk, and who may touch what.
//
// Record stream. Every mutation, under mu_, encodes its records and appends
// them to `chunks_` (memory), assigning each record its final place (segment,
// offset) at once; then it applies them to `state_`. A record that would go
// past segment_bytes first starts a new segment, whose start record restates
// `state_` at exactly that point of the stream.
//
// Writer role. One thread at a time holds it (writer_busy_): a sync() caller
// (write, fsync, then delete compacted segments) or an append() whose
// unwritten bytes passed max_unwritten_bytes (write only). The holder takes
// the chunks queued so far, drops mu_, does the I/O, retakes mu_ and
// publishes the result. Chunks stay in `chunks_` until written so that
// readers find them; `chunks_in_flight_` marks those being written, which
// nobody appends to.
//
// Durability order (what recovery relies on):
//   - a segment is fsynced before the next one is created, so only the newest
//     segment can hold unsynced bytes (a torn tail anywhere else is corruption);
//   - a new segment's directory entry is synced right after it is created;
//   - a compacted segment is removed only after the fsync that made the
//     compaction record durable, then the directory is synced.
//
// Reads take mu_ briefly to find the records, and read files without it.
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "log_store/file_log_store_state.hpp"
#include "nodenomad/file_log_store.hpp"

namespace nodenomad::file_log_store_internal {

// What open() learns from the directory.
struct Recovered {
  LogState state;
  std::uint64_t oldest_seq = 1;    // oldest segment kept on disk
  std::uint64_t active_seq = 1;    // the segment new records go to
  std::uint64_t active_bytes = 0;  // its size
  bool active_started = false;     // it holds its start record
  // Open for appending when the active segment exists and is started.
  std::unique_ptr<WritableFile> active_file;
};

// Replays the directory (creating it if needed); file_log_store_recovery.cpp.
Result<Recovered> recover(FileSystem& fs, const std::string& dir);

std::string segment_path(const std::string& dir, std::uint64_t seq);

class FileLogStoreImpl final : public FileLogStore {
 public:
  FileLogStoreImpl(FileSystem& fs, std::string dir, FileLogStoreOptions options,
                   Recovered recovered);
  ~FileLogStoreImpl() override;

  LogIndex first_index() const override;
  LogIndex last_index() const override;
  Result<Term> term_at(LogIndex index) const override;
  Result<std::vector<Entry>> entries(LogIndex lo, LogIndex hi,
                                     std::uint64_t max_bytes) const override;
  HardState hard_state() const override;
  SnapshotMeta snapshot_meta() const override;

  Status append(std::span<const Entry> entries) override;
  Status truncate_suffix(LogIndex from) override;
  Status set_hard_state(const HardState& state) override;
  Status compact(const SnapshotMeta& meta) override;
  Status install_snapshot(const SnapshotMeta& meta) override;
  Result<LogIndex> sync() override;
  void release_cache(LogIndex below) override;

  FileLogStoreStats stats() const override;
  const std::string& dir() const override { return dir_; }

 private:
  // Queued record bytes of one segment, not yet written to its file.
  struct Chunk {
    std::uint64_t seq = 0;
    std::uint64_t offset = 0;  // where bytes[0] goes in the segment
    std::string bytes;
  };
  struct RecordPlace {
    std::uint64_t seq = 0;
    std::uint64_t offset = 0;
    std::uint32_t framed_bytes = 0;
  };
  // A segment to delete once the stream is durable through `after_stream_bytes`.
  struct Deletion {
    std::uint64_t seq = 0;
    std::uint64_t after_stream_bytes = 0;
  };
  // One turn of the writer role.
  struct Batch {
    bool sync = false;
    std::vector<const Chunk*> chunks;
    std::uint64_t stream_end = 0;
    LogIndex last_index;
    std::vector<std::uint64_t> deletions;
    RecordPlace release;  // drop the page cache before this place (release_cache)
    std::uint64_t bytes_written = 0;  // filled by write_batch
    std::uint64_t fsyncs = 0;
  };
  // An entry to read from its segment file into out[slot].
  struct FileRead {
    std::size_t slot = 0;
    LogIndex index;
    EntryLocation location;
  };

  // --- mutations (file_log_store.cpp) ---
  Status failed_status_locked() const;
  // Frames `payload` as the next record, first starting a segment if needed.
  RecordPlace queue_payload_locked(std::string_view payload);
  void start_segment_locked();
  void schedule_deletions_locked();

  // --- reads (file_log_store.cpp) ---
  const Chunk* unwritten_chunk_locked(const EntryLocation& location) const;
  Status read_from_files(std::span<const FileRead> reads, std::vector<Entry>& out) const;
  Status read_segment(std::span<const FileRead> reads, std::vector<Entry>& out) const;
  Result<std::unique_ptr<ReadableFile>> checkout_reader(std::uint64_t seq) const;
  void return_reader(std::uint64_t seq, std::unique_ptr<ReadableFile> file) const;

  // --- writer role (file_log_store_writer.cpp) ---
  // Writes queued records while more than max_unwritten_bytes are queued.
  Status write_if_over_limit_locked(std::unique_lock<std::mutex>& lock);
  // Takes the writer role (precondition: free), runs one batch, releases it.
  Status run_writer_locked(std::unique_lock<std::mutex>& lock, bool sync);
  Batch take_batch_locked(bool sync);
  void finish_batch_locked(const Batch& batch, const Status& status);
  // I/O without mu_, by the writer-role holder only.
  Status write_batch(Batch& batch);
  Status switch_segment(std::uint64_t seq, Batch& batch);
  // Drops the page cache of the open segment's synced bytes before
  // batch.release (all of them if that is in a later segment).
  void drop_released(const Batch& batch);
  Status delete_segments(const std::vector<std::uint64_t>& seqs);

  FileSystem& fs_;
  const std::string dir_;
  const FileLogStoreOptions options_;

  mutable std::mutex mu_;
  std::condition_variable writer_cv_;  // writer role released
  // --- guarded by mu_ ---
  LogState state_;
  Status failure_;  // the I/O error that failed the store; OK while healthy
  std::uint64_t active_seq_;
  std::uint64_t active_bytes_;  // including queued records
  bool active_started_;
  std::deque<Chunk> chunks_;
  std::size_t chunks_in_flight_ = 0;
  std::uint64_t queued_stream_bytes_ = 0;
  std::uint64_t written_stream_bytes_ = 0;
  std::uint64_t durable_stream_bytes_ = 0;
  LogIndex durable_last_index_;
  bool writer_busy_ = false;
  std::deque<Deletion> deletions_;
  // release_cache(): the end of the newest entry whose bytes may leave the
  // page cache (segment 0: none). The writer drops up to it after a sync.
  RecordPlace release_;
  std::uint64_t next_deletion_seq_;  // first segment not yet scheduled for deletion
  std::uint64_t oldest_seq_;         // oldest segment on disk
  std::string payload_scratch_;      // reused to encode one payload
  FileLogStoreStats counters_;       // the monotonic counters of stats()
  std::uint64_t waiting_sync_callers_ = 0;
  mutable std::multimap<std::uint64_t, std::unique_ptr<ReadableFile>> idle_readers_;
  // --- owned by the writer-role holder ---
  std::unique_ptr<WritableFile> file_;
  std::uint64_t file_seq_ = 0;
  bool file_dirty_ = false;  // appended to since its last fsync
};

}  // namespace nodenomad::file_log_store_internal
