#include "storage/snapshot.hpp"

#include <algorithm>

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

}  // namespace

std::shared_ptr<const CapturedState> capture_state(const KvState& state) {
  auto captured = std::make_shared<CapturedState>();
  captured->index = state.last_applied();
  captured->version_floor = state.version_floor();
  captured->records = state.map().capture();
  return captured;
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
  const std::vector<RecordRef>& records = captured_->records;
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
        const Record& r = *records[next_record_++];
        put_u64(payload_, r.version());
        put_u8(payload_, r.has_expiry() ? kSnapshotEntryHasExpiry : 0);
        put_i64(payload_, r.expiry_ms());
        put_sized(payload_, r.key());
        put_sized(payload_, r.value());
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
  if (!reader.read_u32(count) || count == 0 ||
      count > reader.remaining() / kSnapshotEntryFixedBytes) {
    return corrupt(offset, "entry count does not fit the record");
  }
  if (keys_read_ + count > key_count_) return corrupt(offset, "more keys than the header says");
  for (std::uint32_t i = 0; i < count; ++i) {
    std::uint64_t version = 0;
    std::uint8_t flags = 0;
    std::int64_t expiry_ms = 0;
    std::string_view key;
    std::string_view value;
    if (!reader.read_u64(version) || !reader.read_u8(flags) || !reader.read_i64(expiry_ms) ||
        !reader.read_sized(key) || !reader.read_sized(value)) {
      return corrupt(offset, fmt::format("entry {} truncated", i));
    }
    if (version == 0 || (flags & ~kSnapshotEntryHasExpiry) != 0 || key.empty()) {
      return corrupt(offset, fmt::format("entry {} malformed", i));
    }
    if (state_->map().find(key) != nullptr) return corrupt(offset, "a key appears twice");
    const bool has_expiry = (flags & kSnapshotEntryHasExpiry) != 0;
    state_->map().put(RecordRef::adopt(Record::create(key, value, version, has_expiry, expiry_ms)));
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
  // Parse straight from `bytes` when nothing is pending; copy only the
  // incomplete record at the end.
  std::string_view data = bytes;
  if (!partial_.empty()) {
    partial_.append(bytes);
    data = partial_;
  }
  std::size_t pos = 0;
  // The checks of record::scan (src/common/record_io.cpp), on a stream:
  // the header's own checksum before its length is trusted, then the bound,
  // then the payload's checksum. A stream has no torn tail: finish() refuses
  // an incomplete last record.
  while (data.size() - pos >= record::kHeaderBytes) {
    const char* header = data.data() + pos;
    const std::uint32_t length = load_u32(header);
    if (load_u32(header + 4) != record::header_checksum(length)) {
      return corrupt(stream_offset_ + pos, "record header checksum mismatch");
    }
    if (length > record::kMaxRecordPayloadBytes) {
      return corrupt(stream_offset_ + pos, fmt::format("record length {} over the limit", length));
    }
    if (data.size() - pos < record::kHeaderBytes + length) break;
    const std::string_view payload = data.substr(pos + record::kHeaderBytes, length);
    if (record::checksum(payload) != load_u64(header + 8)) {
      return corrupt(stream_offset_ + pos, "record checksum mismatch");
    }
    NN_RETURN_IF_ERROR(on_record(payload, stream_offset_ + pos));
    pos += record::kHeaderBytes + length;
  }
  stream_offset_ += pos;
  if (!partial_.empty()) {
    partial_.erase(0, pos);
  } else {
    partial_.assign(data.substr(pos));
  }
  return Status::ok();
}

Result<std::unique_ptr<KvState>> SnapshotParser::finish() {
  if (!partial_.empty()) return corrupt(stream_offset_, "incomplete record at the end");
  if (state_ == nullptr || !trailer_seen_) {
    return corrupt(stream_offset_, "the snapshot ends before its trailer");
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

}  // namespace nodenomad::storage
