// Snapshots of a KvState (layout: snapshot_format.hpp): capturing one,
// streaming it, parsing one back, and the snapshot files. Also bucket
// exports, a snapshot's sibling that carries only some digest buckets
// (StateCapture::export_buckets, StorageEngine::replace_buckets).
//
// Consistency while writes go on: capture_state() captures the KvMap (the
// pointers of every current record, from the map's slot array without
// touching a record: kv_map.hpp) under the engine's shared state lock; a
// large map's pointers are listed later, in steps, by the first reader of
// the records. After that, writes replace records in the map while the map
// keeps the old ones alive for the capture (records are immutable, see
// record.hpp), so a stream read later (on another thread, at its own pace) is
// exactly the state at the captured index.
//
// Thread safety: a CapturedState is immutable and may be shared; a
// SnapshotStream and a SnapshotParser are used by one thread at a time.
#pragma once

#include <bitset>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nodenomad/file_system.hpp"
#include "nodenomad/state_machine.hpp"
#include "nodenomad/status.hpp"
#include "nodenomad/storage/shard_digest.hpp"
#include "storage/framed_record_reader.hpp"
#include "storage/kv_state.hpp"
#include "storage/record.hpp"
#include "storage/state_lock.hpp"

namespace nodenomad::storage {

struct CapturedState {
  LogIndex index;
  std::uint64_t version_floor = 0;
  KvMap::Capture capture;
  // The state's digest, from the sums the map keeps (kv_map.hpp, "Digest").
  ShardDigest digest;
  // The engine's state lock, under which a large capture is listed in steps
  // (kv_map.hpp); null if it was listed at once.
  std::shared_ptr<StateLock> lock;

  // The captured records. The first call on a capture not yet listed lists
  // it, kListStepSlots slots per hold of the state lock (shared, behind
  // waiting writers), on the calling thread: call it off the thread that
  // applies writes, where the writes go on between the steps.
  const std::vector<const Record*>& records() const;
  static constexpr std::size_t kListStepSlots = 16384;
};

// The digest of `state` at its last applied index, from the sums its map
// keeps (kv_map.hpp, "Digest"): O(1). Same precondition as capture_state.
ShardDigest kept_digest(const KvState& state);

// Precondition: the caller holds `state` still (`lock`, shared or
// exclusive). A null lock: the capture is listed at once.
std::shared_ptr<const CapturedState> capture_state(const KvState& state,
                                                   std::shared_ptr<StateLock> lock);

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
  FramedRecordReader reader_;         // feed()'s framing
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

// --- Bucket exports ---------------------------------------------------------
//
// The records of some digest buckets (shard_digest.hpp) of a capture, with
// its index and version floor: what StateCapture::export_buckets() sends and
// StorageEngine::replace_buckets() installs. A stream of records framed by
// common/record_format.hpp, like a snapshot, cut into chunks at any byte (a
// record may span chunks). Its record kinds differ from the snapshot's, so a
// snapshot parser refuses an export and the other way round: an export of a
// few buckets can never be restored as a whole state.
//
//   kind 17, header (first record):
//     +---------+------------+-------------------+-------------------+
//     | kind u8 | format u16 | applied_index u64 | version_floor u64 |
//     | = 17    | = 1        |                   |                   |
//     +---------+------------+-------------------+-------------------+
//     +------------------+-------------------------------------------+
//     | bucket_count u16 | bucket_count x bucket u16                 |
//     | 0..256           | ascending, distinct, < kDigestBuckets     |
//     +------------------+-------------------------------------------+
//
//   kind 18, entries (any number; each packs entries up to
//   kBucketExportRecordBytes, or one entry if it alone is larger):
//     +---------+-----------+-------------------------------------------+
//     | kind u8 | count u32 | count x entry (snapshot_format.hpp's)     |
//     | = 18    |  >= 1     | each key in one of the header's buckets   |
//     +---------+-----------+-------------------------------------------+
//
//   kind 19, trailer (last record; nothing may follow):
//     +---------+---------------+-------------------+-------------------------------+
//     | kind u8 | key_count u64 | entry_records u64 | bucket_count x bucket_sum u64 |
//     | = 19    |               |                   | in the header's bucket order  |
//     +---------+---------------+-------------------+-------------------------------+
//
// The trailer's sums are the digest's bucket sums of the exported records:
// the importer recomputes them from what it parsed, so an export that lost,
// gained or changed a record (or a chunk) is refused before it is installed.

inline constexpr std::uint8_t kBucketExportKindHeader = 17;
inline constexpr std::uint8_t kBucketExportKindEntries = 18;
inline constexpr std::uint8_t kBucketExportKindTrailer = 19;
inline constexpr std::uint16_t kBucketExportFormat = 1;
inline constexpr std::size_t kBucketExportRecordBytes = 64u << 10;

using BucketSet = std::bitset<kDigestBuckets>;

// The set of `buckets`; kInvalidArgument naming the first number >=
// kDigestBuckets.
Result<BucketSet> make_bucket_set(const std::vector<std::uint32_t>& buckets);

// The records of `map` whose keys are in `buckets`, found from the keys'
// hashes cached in the map's slots (no record is read). Valid until the next
// mutation of the map.
std::vector<const Record*> records_in_buckets(const KvMap& map, const BucketSet& buckets);

// The export of `buckets` of `captured` in chunks of at most max_chunk_bytes
// (kInvalidArgument if 0); at least one chunk.
Result<std::vector<std::string>> export_captured_buckets(const CapturedState& captured,
                                                         const BucketSet& buckets,
                                                         std::size_t max_chunk_bytes);

// A parsed, checked export: the records to install, one per key.
struct BucketImport {
  std::uint64_t version_floor = 0;
  std::vector<RecordRef> records;
};

// Parses the chunks of one whole export and checks it all before anything is
// installed: framing and checksums, that it is exactly `buckets` at `index`,
// that every key is in those buckets, once, within `limits`, and that the
// trailer's counts and bucket sums match what was read. kInvalidArgument
// naming the chunk and the stream offset otherwise.
Result<BucketImport> parse_bucket_export(const std::vector<std::string>& chunks,
                                         const BucketSet& buckets, LogIndex index,
                                         KvLimits limits);

}  // namespace nodenomad::storage
