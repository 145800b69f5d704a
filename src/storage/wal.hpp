// Writing and replaying the standalone engine's WAL (layout: wal_format.hpp).
//
// WalWriter appends framed records to the open segment and makes them durable
// according to the sync policy; the engine calls it from one thread at a time
// (the commit leader). A failed append or sync is returned as is: the engine
// then stops accepting writes, it never retries (STYLE.md point 4).
//
// replay_wal() reads every segment in index order and hands each command
// after the snapshot's index to a callback, with the rules of
// src/common/record_io.hpp: a torn tail of the last segment is truncated and
// logged; anything else invalid refuses the open with kCorruption naming the
// file and the offset.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "nodenomad/file_system.hpp"
#include "nodenomad/status.hpp"
#include "nodenomad/storage/storage_options.hpp"
#include "nodenomad/types.hpp"

namespace nodenomad::storage {

class WalWriter {
 public:
  // Starts a segment whose first command will be `first_index` (replacing a
  // same-named file, which can only hold a header) and makes it durable.
  // `prior_bytes` counts the older segments still on disk (for max_wal_bytes).
  static Result<std::unique_ptr<WalWriter>> create(FileSystem& fs, std::string dir,
                                                   SyncPolicy policy,
                                                   std::size_t buffer_bytes,
                                                   LogIndex first_index,
                                                   std::uint64_t prior_bytes);

  // Appends framed records. kEveryWrite and kGroupCommit: written and synced
  // before this returns. kNone: buffered in memory up to buffer_bytes, then
  // written to the OS without a sync.
  Status append(std::string_view framed_records);
  // kNone: writes the buffered bytes to the OS (no sync).
  Status flush();
  // Writes what is buffered, syncs it, and closes the segment (clean close).
  Status close();
  // Ends the open segment (flush + sync) and starts a new one at
  // `first_index`. A no-op if the open segment holds no command yet.
  Status rotate(LogIndex first_index);

  LogIndex segment_first_index() const { return first_index_; }
  // Bytes of every segment since the last rotation, plus prior_bytes.
  std::uint64_t total_bytes() const { return total_bytes_; }
  std::uint64_t sync_count() const { return syncs_; }

 private:
  WalWriter(FileSystem& fs, std::string dir, SyncPolicy policy, std::size_t buffer_bytes)
      : fs_(fs), dir_(std::move(dir)), policy_(policy), buffer_bytes_(buffer_bytes) {}
  Status open_segment(LogIndex first_index);
  Status sync();

  FileSystem& fs_;
  std::string dir_;
  SyncPolicy policy_;
  std::size_t buffer_bytes_;
  std::unique_ptr<WritableFile> file_;
  LogIndex first_index_;
  bool segment_has_commands_ = false;
  std::string buffer_;  // kNone only; at most buffer_bytes_ plus one append
  std::uint64_t total_bytes_ = 0;
  std::uint64_t syncs_ = 0;
};

struct WalReplay {
  LogIndex last_index;           // the last command seen (or `after` if none)
  std::uint64_t bytes = 0;       // bytes of the segments kept
  std::uint64_t commands = 0;    // commands handed to the callback
  std::uint64_t segments = 0;    // segments read
};

// Called with each command after `after`, in index order; an error stops the
// replay and is returned with the file and offset added.
using WalApplyFn = std::function<Status(LogIndex index, std::string_view command)>;

// Replays the WAL in `dir` after index `after` (the snapshot's). Segments that
// end at or before `after` are removed, as a snapshot made them obsolete.
Result<WalReplay> replay_wal(FileSystem& fs, const std::string& dir, LogIndex after,
                             const WalApplyFn& apply);

// Removes the segments older than the one starting at `first_kept` and syncs
// the directory (after a snapshot at first_kept - 1 is durable).
Status remove_wal_segments_before(FileSystem& fs, const std::string& dir, LogIndex first_kept);

}  // namespace nodenomad::storage
