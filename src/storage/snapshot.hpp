// Snapshots of a KvState (layout: snapshot_format.hpp): capturing one,
// streaming it, parsing one back, and the snapshot files.
//
// Consistency while writes go on: capture_state() takes a reference to every
// current record (records are immutable, see record.hpp). The capture costs
// one pointer copy and one atomic increment per key, under the engine's
// shared state lock; after that, writes replace records in the map while the
// snapshot still holds the old ones, so a stream read later (on another
// thread, at its own pace) is exactly the state at the captured index.
//
// Thread safety: a CapturedState is immutable and may be shared; a
// SnapshotStream and a SnapshotParser are used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nodenomad/file_system.hpp"
#include "nodenomad/state_machine.hpp"
#include "nodenomad/status.hpp"
#include "storage/kv_state.hpp"
#include "storage/record.hpp"

namespace nodenomad::storage {

struct CapturedState {
  LogIndex index;
  std::uint64_t version_floor = 0;
  std::vector<RecordRef> records;
};

// Precondition: the caller holds `state` still (the engine's state lock).
std::shared_ptr<const CapturedState> capture_state(const KvState& state);

// The snapshot byte stream of a CapturedState, produced record by record so
// that memory stays bounded by one record whatever the state's size.
class SnapshotStream final : public SnapshotSource {
 public:
  SnapshotStream(std::shared_ptr<const CapturedState> captured, std::size_t record_bytes);

  LogIndex index() const override { return captured_->index; }
  // kInvalidArgument if max_bytes is 0.
  Result<std::string> next_chunk(std::size_t max_bytes) override;

 private:
  enum class Stage { kHeader, kEntries, kTrailer, kDone };
  // Appends the next framed record to pending_ and advances the stage.
  void encode_next_record();

  std::shared_ptr<const CapturedState> captured_;
  std::size_t record_bytes_;
  Stage stage_ = Stage::kHeader;
  std::size_t next_record_ = 0;       // next entry of captured_->records
  std::uint64_t entry_records_ = 0;   // kind-2 records emitted
  std::string pending_;               // framed bytes not yet handed out
  std::size_t pending_pos_ = 0;
  std::string payload_;               // scratch for one payload
};

// Rebuilds a KvState from snapshot records; refuses anything malformed with
// kCorruption naming `source_name` and the offset.
class SnapshotParser {
 public:
  SnapshotParser(KvLimits limits, std::string source_name);

  // One record whose framing and checksum were already checked (file load).
  Status on_record(std::string_view payload, std::uint64_t offset);
  // Raw stream bytes in any chunking (restore); checks the framing itself.
  // Memory: at most one record is buffered across chunk boundaries.
  Status feed(std::string_view bytes);
  // The state, once a complete snapshot (through its trailer) was read.
  Result<std::unique_ptr<KvState>> finish();

  bool has_header() const { return state_ != nullptr; }
  LogIndex index() const { return index_; }

 private:
  Status parse_header(std::string_view payload, std::uint64_t offset);
  Status parse_entries(std::string_view payload, std::uint64_t offset);
  Status parse_trailer(std::string_view payload, std::uint64_t offset);
  Status corrupt(std::uint64_t offset, std::string_view what) const;

  KvLimits limits_;
  std::string source_name_;
  std::unique_ptr<KvState> state_;
  LogIndex index_;
  std::uint64_t key_count_ = 0;
  std::uint64_t keys_read_ = 0;
  std::uint64_t entry_records_ = 0;
  bool trailer_seen_ = false;
  std::string partial_;               // an incomplete record between feed() calls
  std::uint64_t stream_offset_ = 0;   // stream offset of partial_'s first byte
};

// Loads a snapshot file; a torn or incomplete one is kCorruption (snapshot
// files are published by rename only once complete and synced).
Result<std::unique_ptr<KvState>> load_snapshot_file(FileSystem& fs, const std::string& path,
                                                    KvLimits limits);

// Writes `source` to <dir>/snapshot-<index>.snap atomically (temp file,
// sync, rename, directory sync), reading it in chunks of chunk_bytes.
Status write_snapshot_file(FileSystem& fs, const std::string& dir, SnapshotSource& source,
                           std::size_t chunk_bytes);

// Removes every snapshot file but the one at `keep`, and any leftover temp
// file, then syncs the directory.
Status remove_snapshots_except(FileSystem& fs, const std::string& dir,
                               std::optional<LogIndex> keep);

// The index of the newest snapshot file in `dir`, if any.
Result<std::optional<LogIndex>> find_newest_snapshot(FileSystem& fs, const std::string& dir);

}  // namespace nodenomad::storage
