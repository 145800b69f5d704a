#include "storage/snapshot.hpp"

#include <algorithm>
#include <array>

#include <fmt/format.h>

#include "common/record_format.hpp"
#include "common/record_io.hpp"
#include "storage/byte_codec.hpp"
#include "storage/snapshot_format.hpp"

namespace nodenomad::storage {
namespace {

// The parser reserves table space from the header's key count only up to
// this many keys, so a forged count cannot make it allocate.
constexpr std::uint64_t kMaxReserveKeys = 1u << 20;

// One entry of a snapshot or a bucket export (snapshot_format.hpp).
struct Entry {
  std::uint64_t version = 0;
  bool has_expiry = false;
  std::int64_t expiry_ms = 0;
  std::string_view key;
  std::string_view value;

  RecordRef make_record() const {
    return RecordRef::adopt(Record::create(key, value, version, has_expiry, expiry_ms));
  }
};

void put_entry(std::string& out, const Record& r) {
  put_u64(out, r.version());
  put_u8(out, r.has_expiry() ? kSnapshotEntryHasExpiry : 0);
  put_i64(out, r.expiry_ms());
  put_sized(out, r.key());
  put_sized(out, r.value());
}

enum class EntryRead { kOk, kTruncated, kMalformed };

EntryRead read_entry(ByteReader& reader, Entry& out) {
  std::uint8_t flags = 0;
  if (!reader.read_u64(out.version) || !reader.read_u8(flags) || !reader.read_i64(out.expiry_ms) ||
      !reader.read_sized(out.key) || !reader.read_sized(out.value)) {
    return EntryRead::kTruncated;
  }
  if (out.version == 0 || (flags & ~kSnapshotEntryHasExpiry) != 0 || out.key.empty()) {
    return EntryRead::kMalformed;
  }
  out.has_expiry = (flags & kSnapshotEntryHasExpiry) != 0;
  return EntryRead::kOk;
}

// The count of an entries record, if it fits the bytes that follow it.
bool read_entry_count(ByteReader& reader, std::uint32_t& count) {
  return reader.read_u32(count) && count > 0 &&
         count <= reader.remaining() / kSnapshotEntryFixedBytes;
}

}  // namespace

std::shared_ptr<const CapturedState> capture_state(const KvState& state,
                                                   std::shared_ptr<StateLock> lock) {
  auto captured = std::make_shared<CapturedState>();
  captured->index = state.last_applied();
  captured->version_floor = state.version_floor();
  captured->digest = kept_digest(state);
  captured->capture = state.map().capture(lock == nullptr ? SIZE_MAX : KvMap::kListAtOnce);
  if (!captured->capture.listed()) captured->lock = std::move(lock);
  return captured;
}

const std::vector<const Record*>& CapturedState::records() const {
  while (!capture.listed()) {
    lock->lock_shared_after_writers();
    std::shared_lock held(*lock, std::adopt_lock);
    capture.step(kListStepSlots);
  }
  return capture.records();
}

SnapshotStream::SnapshotStream(std::shared_ptr<const CapturedState> captured,
                               std::size_t record_bytes)
    : captured_(std::move(captured)), record_bytes_(record_bytes) {
  NN_ASSERT(captured_ != nullptr, "a snapshot stream needs a captured state");
}

Result<std::string> SnapshotStream::next_chunk(std::size_t max_bytes) {
  if (max_bytes == 0) return Status::invalid_argument("next_chunk: max_bytes must be above 0");
  while (pending_.size() - pending_pos_ < max_bytes && stage_ != Stage::kDone) {
    if (pending_pos_ > 0) {  // drop what was handed out before growing
      pending_.erase(0, pending_pos_);
      pending_pos_ = 0;
    }
    encode_next_record();
  }
  const std::size_t n = std::min(max_bytes, pending_.size() - pending_pos_);
  std::string chunk = pending_.substr(pending_pos_, n);
  pending_pos_ += n;
  return chunk;
}

void SnapshotStream::encode_next_record() {
  payload_.clear();
  const std::vector<const Record*>& records = captured_->records();
  switch (stage_) {
    case Stage::kHeader:
      put_u8(payload_, kSnapshotKindHeader);
      put_u16(payload_, kSnapshotFormat);
      put_u64(payload_, captured_->index.value());
      put_u64(payload_, captured_->version_floor);
      put_u64(payload_, records.size());
      stage_ = records.empty() ? Stage::kTrailer : Stage::kEntries;
      break;
    case Stage::kEntries: {
      put_u8(payload_, kSnapshotKindEntries);
      put_u32(payload_, 0);  // the count, patched below
      std::uint32_t count = 0;
      while (next_record_ < records.size() && (count == 0 || payload_.size() < record_bytes_)) {
        put_entry(payload_, *records[next_record_++]);
        ++count;
      }
      store_u32_at(payload_, 1, count);
      ++entry_records_;
      if (next_record_ == records.size()) stage_ = Stage::kTrailer;
      break;
    }
    case Stage::kTrailer:
      put_u8(payload_, kSnapshotKindTrailer);
      put_u64(payload_, records.size());
      put_u64(payload_, entry_records_);
      stage_ = Stage::kDone;
      break;
    case Stage::kDone:
      return;
  }
  record::encode(pending_, payload_);
}

SnapshotParser::SnapshotParser(KvLimits limits, std::string source_name)
    : limits_(limits), source_name_(std::move(source_name)) {}

Status SnapshotParser::corrupt(std::uint64_t offset, std::string_view what) const {
  return Status::corruption(
      fmt::format("snapshot {}: {} at offset {}", source_name_, what, offset));
}

Status SnapshotParser::on_record(std::string_view payload, std::uint64_t offset) {
  if (trailer_seen_) return corrupt(offset, "record after the trailer");
  if (payload.empty()) return corrupt(offset, "empty record");
  const auto kind = static_cast<std::uint8_t>(payload[0]);
  if (state_ == nullptr) {
    if (kind != kSnapshotKindHeader) return corrupt(offset, "missing header");
    return parse_header(payload, offset);
  }
  if (kind == kSnapshotKindEntries) return parse_entries(payload, offset);
  if (kind == kSnapshotKindTrailer) return parse_trailer(payload, offset);
  return corrupt(offset, fmt::format("unexpected record kind {}", kind));
}

Status SnapshotParser::parse_header(std::string_view payload, std::uint64_t offset) {
  ByteReader reader(payload.substr(1));
  std::uint16_t format = 0;
  std::uint64_t index = 0;
  std::uint64_t floor = 0;
  if (!reader.read_u16(format) || !reader.read_u64(index) || !reader.read_u64(floor) ||
      !reader.read_u64(key_count_) || !reader.done()) {
    return corrupt(offset, "malformed header");
  }
  if (format != kSnapshotFormat) return corrupt(offset, fmt::format("unknown format {}", format));
  index_ = LogIndex(index);
  state_ = std::make_unique<KvState>(limits_);
  state_->set_last_applied(index_);
  state_->set_version_floor(floor);
  state_->map().reserve(static_cast<std::size_t>(std::min(key_count_, kMaxReserveKeys)));
  return Status::ok();
}

Status SnapshotParser::parse_entries(std::string_view payload, std::uint64_t offset) {
  ByteReader reader(payload.substr(1));
  std::uint32_t count = 0;
  if (!read_entry_count(reader, count)) {
    return corrupt(offset, "entry count does not fit the record");
  }
  if (keys_read_ + count > key_count_) return corrupt(offset, "more keys than the header says");
  for (std::uint32_t i = 0; i < count; ++i) {
    Entry entry;
    switch (read_entry(reader, entry)) {
      case EntryRead::kOk: break;
      case EntryRead::kTruncated: return corrupt(offset, fmt::format("entry {} truncated", i));
      case EntryRead::kMalformed: return corrupt(offset, fmt::format("entry {} malformed", i));
    }
    // One hash and one probe per key: the insert itself finds a duplicate.
    if (!state_->map().insert_new(entry.make_record())) {
      return corrupt(offset, "a key appears twice");
    }
  }
  if (!reader.done()) return corrupt(offset, "bytes after the last entry");
  keys_read_ += count;
  ++entry_records_;
  return Status::ok();
}

Status SnapshotParser::parse_trailer(std::string_view payload, std::uint64_t offset) {
  ByteReader reader(payload.substr(1));
  std::uint64_t keys = 0;
  std::uint64_t records = 0;
  if (!reader.read_u64(keys) || !reader.read_u64(records) || !reader.done()) {
    return corrupt(offset, "malformed trailer");
  }
  if (keys != key_count_ || keys != keys_read_ || records != entry_records_) {
    return corrupt(offset, fmt::format("trailer counts {} keys in {} records, read {} in {}",
                                       keys, records, keys_read_, entry_records_));
  }
  trailer_seen_ = true;
  return Status::ok();
}

Status SnapshotParser::feed(std::string_view bytes) {
  bool refused_record = false;
  Status fed = reader_.feed(bytes, [&](std::string_view payload, std::uint64_t offset) {
    Status status = on_record(payload, offset);
    refused_record = !status.is_ok();
    return status;
  });
  // on_record's errors already name the snapshot; the framing's do not.
  if (!fed.is_ok() && !refused_record) {
    return fed.with_context(fmt::format("snapshot {}", source_name_));
  }
  return fed;
}

Result<std::unique_ptr<KvState>> SnapshotParser::finish() {
  if (reader_.holds_partial()) return corrupt(reader_.offset(), "incomplete record at the end");
  if (state_ == nullptr || !trailer_seen_) {
    return corrupt(reader_.offset(), "the snapshot ends before its trailer");
  }
  return std::move(state_);
}

Result<std::unique_ptr<KvState>> load_snapshot_file(FileSystem& fs, const std::string& path,
                                                    KvLimits limits) {
  SnapshotParser parser(limits, path);
  NN_ASSIGN_OR_RETURN(record::ScanResult scanned,
                      record::scan(fs, path, 0, [&](std::string_view payload, std::uint64_t off) {
                        return parser.on_record(payload, off);
                      }));
  if (scanned.torn_tail) {
    return Status::corruption(fmt::format(
        "snapshot {}: cut short or damaged at offset {} (a published snapshot must be whole)",
        path, scanned.valid_bytes));
  }
  return parser.finish();
}

Status write_snapshot_file(FileSystem& fs, const std::string& dir, SnapshotSource& source,
                           std::size_t chunk_bytes) {
  const std::string path = join_path(dir, snapshot_file_name(source.index()));
  const std::string tmp = path + std::string(kTempSuffix);
  {
    NN_ASSIGN_OR_RETURN(auto file, fs.open_writable(tmp, WriteMode::kTruncate));
    while (true) {
      NN_ASSIGN_OR_RETURN(std::string chunk, source.next_chunk(chunk_bytes));
      if (chunk.empty()) break;
      NN_RETURN_IF_ERROR(file->append(chunk));
    }
    NN_RETURN_IF_ERROR(file->sync());
    NN_RETURN_IF_ERROR(file->close());
  }
  NN_RETURN_IF_ERROR(fs.rename(tmp, path));
  return fs.sync_dir(dir);
}

Status remove_snapshots_except(FileSystem& fs, const std::string& dir,
                               std::optional<LogIndex> keep) {
  NN_ASSIGN_OR_RETURN(std::vector<std::string> names, fs.list(dir));
  bool removed = false;
  for (const std::string& name : names) {
    const auto index = parse_snapshot_file_name(name);
    const bool obsolete = index.has_value() && index != keep;
    const bool leftover_temp = name.starts_with("snapshot-") && name.ends_with(kTempSuffix);
    if (!obsolete && !leftover_temp) continue;
    NN_RETURN_IF_ERROR(fs.remove(join_path(dir, name)));
    removed = true;
  }
  return removed ? fs.sync_dir(dir) : Status::ok();
}

Result<std::optional<LogIndex>> find_newest_snapshot(FileSystem& fs, const std::string& dir) {
  NN_ASSIGN_OR_RETURN(std::vector<std::string> names, fs.list(dir));
  std::optional<LogIndex> newest;
  for (const std::string& name : names) {
    const auto index = parse_snapshot_file_name(name);
    if (index && (!newest || *index > *newest)) newest = index;
  }
  return newest;
}

// --- bucket exports ------------------------------------------------------------

namespace {

std::optional<WallTime> expiry_of(bool has_expiry, std::int64_t expiry_ms) {
  return has_expiry ? std::optional<WallTime>(from_ms(expiry_ms)) : std::nullopt;
}

std::vector<std::uint32_t> listed_buckets(const BucketSet& buckets) {
  std::vector<std::uint32_t> listed;
  for (std::uint32_t b = 0; b < kDigestBuckets; ++b) {
    if (buckets.test(b)) listed.push_back(b);
  }
  return listed;
}

// Frames export records into one stream and cuts it into chunks of
// max_chunk_bytes as it grows.
class ChunkWriter {
 public:
  explicit ChunkWriter(std::size_t max_chunk_bytes) : max_chunk_bytes_(max_chunk_bytes) {}

  void add(std::string_view payload) {
    record::encode(pending_, payload);
    std::size_t pos = 0;
    while (pending_.size() - pos >= max_chunk_bytes_) {
      chunks_.emplace_back(pending_, pos, max_chunk_bytes_);
      pos += max_chunk_bytes_;
    }
    pending_.erase(0, pos);
  }

  std::vector<std::string> finish() && {
    if (!pending_.empty()) chunks_.push_back(std::move(pending_));
    return std::move(chunks_);
  }

 private:
  std::size_t max_chunk_bytes_;
  std::string pending_;  // framed bytes not yet cut into a chunk
  std::vector<std::string> chunks_;
};

// How far ahead of the scan a record's first line is prefetched: the scan is
// bound by one cache miss per record, and these overlap.
constexpr std::size_t kScanPrefetchRecords = 8;

}  // namespace

Result<BucketSet> make_bucket_set(const std::vector<std::uint32_t>& buckets) {
  BucketSet set;
  for (std::uint32_t b : buckets) {
    if (b >= kDigestBuckets) {
      return Status::invalid_argument(
          fmt::format("bucket {} is out of range: buckets are 0 to {}", b, kDigestBuckets - 1));
    }
    set.set(b);
  }
  return set;
}

std::vector<const Record*> records_in_buckets(const KvMap& map, const BucketSet& buckets) {
  std::vector<const Record*> found;
  if (buckets.none()) return found;
  map.collect_by_hash(
      [&buckets](std::uint64_t key_hash) { return buckets.test(digest_bucket_of_hash(key_hash)); },
      found);
  return found;
}

Result<std::vector<std::string>> export_captured_buckets(const CapturedState& captured,
                                                         const BucketSet& buckets,
                                                         std::size_t max_chunk_bytes) {
  if (max_chunk_bytes == 0) {
    return Status::invalid_argument("export_buckets: max_chunk_bytes must be above 0");
  }
  const std::vector<std::uint32_t> listed = listed_buckets(buckets);
  ChunkWriter writer(max_chunk_bytes);
  std::string payload;
  put_u8(payload, kBucketExportKindHeader);
  put_u16(payload, kBucketExportFormat);
  put_u64(payload, captured.index.value());
  put_u64(payload, captured.version_floor);
  put_u16(payload, static_cast<std::uint16_t>(listed.size()));
  for (std::uint32_t b : listed) put_u16(payload, static_cast<std::uint16_t>(b));
  writer.add(payload);

  std::array<std::uint64_t, kDigestBuckets> sums{};
  std::uint64_t keys = 0;
  std::uint64_t entry_records = 0;
  std::uint32_t count = 0;  // entries in `payload`
  auto close_entries = [&] {
    if (count == 0) return;
    store_u32_at(payload, 1, count);
    writer.add(payload);
    ++entry_records;
    count = 0;
  };
  const std::vector<const Record*>& records = captured.records();
  const std::size_t scanned = buckets.any() ? records.size() : 0;
  for (std::size_t i = 0; i < scanned; ++i) {
    if (i + kScanPrefetchRecords < scanned) {
      __builtin_prefetch(records[i + kScanPrefetchRecords]);
    }
    const Record& r = *records[i];
    const std::uint32_t bucket = digest_bucket(r.key());
    if (!buckets.test(bucket)) continue;
    if (count == 0) {
      payload.clear();
      put_u8(payload, kBucketExportKindEntries);
      put_u32(payload, 0);  // the count, patched by close_entries
    }
    put_entry(payload, r);
    sums[bucket] += digest_record_hash(r.key(), r.value(), r.version(),
                                       expiry_of(r.has_expiry(), r.expiry_ms()));
    ++count;
    ++keys;
    if (payload.size() >= kBucketExportRecordBytes) close_entries();
  }
  close_entries();

  payload.clear();
  put_u8(payload, kBucketExportKindTrailer);
  put_u64(payload, keys);
  put_u64(payload, entry_records);
  for (std::uint32_t b : listed) put_u64(payload, sums[b]);
  writer.add(payload);
  return std::move(writer).finish();
}

namespace {

// Checks an export record by record, staging its records in a map of their
// own; nothing touches the engine's state.
class BucketExportParser {
 public:
  BucketExportParser(const BucketSet& buckets, LogIndex index, KvLimits limits)
      : buckets_(buckets), index_(index), limits_(limits) {}

  Status on_record(std::string_view payload, std::uint64_t offset) {
    if (trailer_seen_) return refuse(offset, "a record after the trailer");
    if (payload.empty()) return refuse(offset, "an empty record");
    const auto kind = static_cast<std::uint8_t>(payload[0]);
    ByteReader reader(payload.substr(1));
    if (!header_seen_) {
      if (kind == kSnapshotKindHeader) return refuse(offset, "a snapshot, not a bucket export");
      if (kind != kBucketExportKindHeader) return refuse(offset, "no header");
      return parse_header(reader, offset);
    }
    if (kind == kBucketExportKindEntries) return parse_entries(reader, offset);
    if (kind == kBucketExportKindTrailer) return parse_trailer(reader, offset);
    return refuse(offset, fmt::format("unexpected record kind {}", kind));
  }

  bool complete() const { return trailer_seen_; }

  BucketImport take() {
    NN_ASSERT(trailer_seen_, "an export taken before its trailer was checked");
    return BucketImport{version_floor_, staged_.take_all()};
  }

 private:
  static Status refuse(std::uint64_t offset, std::string_view what) {
    return Status::invalid_argument(fmt::format("{} at offset {}", what, offset));
  }

  Status parse_header(ByteReader& reader, std::uint64_t offset) {
    std::uint16_t format = 0;
    std::uint64_t index = 0;
    std::uint16_t bucket_count = 0;
    if (!reader.read_u16(format) || !reader.read_u64(index) ||
        !reader.read_u64(version_floor_) || !reader.read_u16(bucket_count)) {
      return refuse(offset, "a truncated header");
    }
    if (format != kBucketExportFormat) return refuse(offset, fmt::format("format {}", format));
    if (bucket_count > kDigestBuckets) {
      return refuse(offset, fmt::format("{} buckets in the header", bucket_count));
    }
    for (std::uint16_t i = 0; i < bucket_count; ++i) {
      std::uint16_t bucket = 0;
      if (!reader.read_u16(bucket)) return refuse(offset, "a truncated bucket list");
      if (bucket >= kDigestBuckets || (!listed_.empty() && bucket <= listed_.back())) {
        return refuse(offset, "a bucket list that is not ascending numbers below 256");
      }
      listed_.push_back(bucket);
    }
    if (!reader.done()) return refuse(offset, "bytes after the header's bucket list");
    if (LogIndex(index) != index_) {
      return refuse(offset, fmt::format("an export taken at index {}, but this replica is at {}",
                                        index, index_.value()));
    }
    BucketSet in_export;
    for (std::uint32_t b : listed_) in_export.set(b);
    for (std::uint32_t b = 0; b < kDigestBuckets; ++b) {
      if (in_export.test(b) != buckets_.test(b)) {
        return refuse(offset, fmt::format("bucket {} {} in the export but {} being replaced", b,
                                          in_export.test(b) ? "is" : "is not",
                                          buckets_.test(b) ? "is" : "is not"));
      }
    }
    header_seen_ = true;
    return Status::ok();
  }

  Status parse_entries(ByteReader& reader, std::uint64_t offset) {
    std::uint32_t count = 0;
    if (!read_entry_count(reader, count)) return refuse(offset, "an entry count that does not fit");
    for (std::uint32_t i = 0; i < count; ++i) {
      Entry entry;
      switch (read_entry(reader, entry)) {
        case EntryRead::kOk: break;
        case EntryRead::kTruncated: return refuse(offset, fmt::format("entry {} truncated", i));
        case EntryRead::kMalformed: return refuse(offset, fmt::format("entry {} malformed", i));
      }
      if (Status limits = check_kv_limits(limits_, entry.key, entry.value); !limits.is_ok()) {
        return refuse(offset, fmt::format("entry {}: {}", i, limits.message()));
      }
      const std::uint32_t bucket = digest_bucket(entry.key);
      if (!buckets_.test(bucket)) {
        return refuse(offset, fmt::format("entry {}: a key of bucket {}, outside the buckets "
                                          "being replaced", i, bucket));
      }
      if (!staged_.insert_new(entry.make_record())) {
        return refuse(offset, "a key that appears twice");
      }
      sums_[bucket] += digest_record_hash(entry.key, entry.value, entry.version,
                                          expiry_of(entry.has_expiry, entry.expiry_ms));
    }
    if (!reader.done()) return refuse(offset, "bytes after the last entry");
    ++entry_records_;
    return Status::ok();
  }

  Status parse_trailer(ByteReader& reader, std::uint64_t offset) {
    std::uint64_t keys = 0;
    std::uint64_t records = 0;
    if (!reader.read_u64(keys) || !reader.read_u64(records)) {
      return refuse(offset, "a truncated trailer");
    }
    if (keys != staged_.size() || records != entry_records_) {
      return refuse(offset, fmt::format("a trailer that counts {} keys in {} records, but {} "
                                        "were read in {}", keys, records, staged_.size(),
                                        entry_records_));
    }
    for (std::uint32_t b : listed_) {
      std::uint64_t sum = 0;
      if (!reader.read_u64(sum)) return refuse(offset, "a truncated trailer");
      if (sum != sums_[b]) {
        return refuse(offset, fmt::format("bucket {}'s records sum to {:#x}, the trailer says "
                                          "{:#x}", b, sums_[b], sum));
      }
    }
    if (!reader.done()) return refuse(offset, "bytes after the trailer's sums");
    trailer_seen_ = true;
    return Status::ok();
  }

  const BucketSet& buckets_;
  const LogIndex index_;
  const KvLimits limits_;
  bool header_seen_ = false;
  bool trailer_seen_ = false;
  std::vector<std::uint32_t> listed_;  // the header's buckets, ascending
  std::uint64_t version_floor_ = 0;
  KvMap staged_;
  std::array<std::uint64_t, kDigestBuckets> sums_{};
  std::uint64_t entry_records_ = 0;
};

}  // namespace

Result<BucketImport> parse_bucket_export(const std::vector<std::string>& chunks,
                                         const BucketSet& buckets, LogIndex index,
                                         KvLimits limits) {
  BucketExportParser parser(buckets, index, limits);
  FramedRecordReader reader;
  const auto on_record = [&parser](std::string_view payload, std::uint64_t offset) {
    return parser.on_record(payload, offset);
  };
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    if (Status fed = reader.feed(chunks[i], on_record); !fed.is_ok()) {
      return Status::invalid_argument(fmt::format("bucket export, chunk {} of {}: {}", i + 1,
                                                  chunks.size(), fed.message()));
    }
  }
  if (reader.holds_partial() || !parser.complete()) {
    return Status::invalid_argument(fmt::format(
        "bucket export of {} chunks: it ends at offset {} {}", chunks.size(), reader.offset(),
        reader.holds_partial() ? "inside a record" : "before its trailer"));
  }
  return parser.take();
}

}  // namespace nodenomad::storage
