#include "storage/wal.hpp"

#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include "common/record_format.hpp"
#include "common/record_io.hpp"
#include "nodenomad/logging.hpp"
#include "storage/wal_format.hpp"

namespace nodenomad::storage {

Result<std::unique_ptr<WalWriter>> WalWriter::create(FileSystem& fs, std::string dir,
                                                     SyncPolicy policy, std::size_t buffer_bytes,
                                                     LogIndex first_index,
                                                     std::uint64_t prior_bytes) {
  std::unique_ptr<WalWriter> writer(new WalWriter(fs, std::move(dir), policy, buffer_bytes));
  NN_RETURN_IF_ERROR(writer->open_segment(first_index));
  writer->total_bytes_ += prior_bytes;
  return writer;
}

Status WalWriter::open_segment(LogIndex first_index) {
  const std::string path = join_path(dir_, wal_segment_name(first_index));
  NN_ASSIGN_OR_RETURN(file_, fs_.open_writable(path, WriteMode::kTruncate));
  std::string header;
  record::encode(header, encode_wal_segment_header(first_index));
  NN_RETURN_IF_ERROR(file_->append(header));
  // The header and the name are durable before any command goes in, so a
  // crash leaves either no segment or a segment that says where it starts.
  NN_RETURN_IF_ERROR(sync());
  NN_RETURN_IF_ERROR(fs_.sync_dir(dir_));
  first_index_ = first_index;
  segment_has_commands_ = false;
  total_bytes_ = header.size();
  return Status::ok();
}

Status WalWriter::sync() {
  ++syncs_;
  return file_->sync();
}

Status WalWriter::append(std::string_view framed_records) {
  NN_ASSERT(file_ != nullptr, "append to a WAL without an open segment");
  if (framed_records.empty()) return Status::ok();
  segment_has_commands_ = true;
  total_bytes_ += framed_records.size();
  if (policy_ == SyncPolicy::kNone) {
    buffer_.append(framed_records);
    return buffer_.size() >= buffer_bytes_ ? flush() : Status::ok();
  }
  NN_ASSERT(buffer_.empty(), "a buffered WAL under a syncing policy");
  NN_RETURN_IF_ERROR(file_->append(framed_records));
  return sync();
}

Status WalWriter::flush() {
  if (buffer_.empty()) return Status::ok();
  Status status = file_->append(buffer_);
  buffer_.clear();
  return status;
}

Status WalWriter::close() {
  if (file_ == nullptr) return Status::ok();
  NN_RETURN_IF_ERROR(flush());
  if (policy_ == SyncPolicy::kNone) NN_RETURN_IF_ERROR(sync());
  Status closed = file_->close();
  file_.reset();
  return closed;
}

Status WalWriter::rotate(LogIndex first_index) {
  if (!segment_has_commands_) {
    // Nothing to close, but every older segment (replayed at open) is about
    // to be covered by the snapshot that asked for the rotation: only this
    // segment counts towards max_wal_bytes from now on. Otherwise a WAL
    // reopened above the limit would ask for a snapshot after every write.
    total_bytes_ = file_->size();
    return Status::ok();
  }
  NN_ASSERT(first_index > first_index_, "rotation must move forward: ", first_index, " after ",
            first_index_);
  NN_RETURN_IF_ERROR(flush());
  // Synced even under kNone: a later segment must never exist next to an
  // earlier one whose tail a crash could still cut (recovery relies on it).
  NN_RETURN_IF_ERROR(sync());
  NN_RETURN_IF_ERROR(file_->close());
  return open_segment(first_index);
}

namespace {

struct Segment {
  LogIndex first_index;
  std::string name;
};

Result<std::vector<Segment>> list_segments(FileSystem& fs, const std::string& dir) {
  NN_ASSIGN_OR_RETURN(std::vector<std::string> names, fs.list(dir));
  std::vector<Segment> segments;
  for (std::string& name : names) {
    if (auto first = parse_wal_segment_name(name)) segments.push_back({*first, std::move(name)});
  }
  std::sort(segments.begin(), segments.end(),
            [](const Segment& a, const Segment& b) { return a.first_index < b.first_index; });
  return segments;
}

// Reads one segment; `expected` is the index its first command must have
// and, on return, the index after its last command.
Status replay_segment(FileSystem& fs, const std::string& path, const Segment& segment,
                      bool is_last, LogIndex after, LogIndex& expected, const WalApplyFn& apply,
                      WalReplay& replay) {
  bool seen_header = false;
  auto visit = [&](std::string_view payload, std::uint64_t offset) -> Status {
    auto at = [&](std::string_view what) {
      return Status::corruption(fmt::format("{}: {} at offset {}", path, what, offset));
    };
    Result<WalPayload> decoded = decode_wal_payload(payload);
    if (!decoded.is_ok()) return at(decoded.status().message());
    if (!seen_header) {
      if (decoded->kind != kWalKindSegmentHeader || decoded->index != segment.first_index) {
        return at("the segment does not start with its own header");
      }
      seen_header = true;
      return Status::ok();
    }
    if (decoded->kind != kWalKindCommand || decoded->index != expected) {
      return at(fmt::format("expected the command at index {}", expected.value()));
    }
    expected = expected.next();
    if (decoded->index <= after) return Status::ok();
    Status applied = apply(decoded->index, decoded->command);
    if (!applied.is_ok()) return at(applied.message());
    replay.last_index = decoded->index;
    ++replay.commands;
    return Status::ok();
  };
  // Only the last segment may have a torn tail: an older one was synced
  // before its successor was created.
  Result<record::ScanResult> scanned = is_last ? record::recover(fs, path, 0, visit)
                                               : record::scan(fs, path, 0, visit);
  if (!scanned.is_ok()) return std::move(scanned).take_status();
  if (!is_last && scanned->torn_tail) {
    return Status::corruption(fmt::format(
        "{}: invalid bytes at offset {} in a segment that is not the last", path,
        scanned->valid_bytes));
  }
  if (!seen_header && !is_last) {
    return Status::corruption(fmt::format("{}: empty segment before the last one", path));
  }
  replay.bytes += scanned->valid_bytes;
  ++replay.segments;
  return Status::ok();
}

}  // namespace

Result<WalReplay> replay_wal(FileSystem& fs, const std::string& dir, LogIndex after,
                             const WalApplyFn& apply) {
  NN_ASSIGN_OR_RETURN(std::vector<Segment> segments, list_segments(fs, dir));
  WalReplay replay;
  replay.last_index = after;
  if (segments.empty()) return replay;
  // The first segment to read is the last one starting at or before after+1;
  // the ones before it hold only commands the snapshot covers.
  std::size_t start = 0;
  while (start + 1 < segments.size() && segments[start + 1].first_index <= after.next()) ++start;
  if (segments[start].first_index > after.next()) {
    return Status::corruption(fmt::format(
        "{}: the WAL starts at index {} but the snapshot covers only through {}; commands in "
        "between are missing",
        join_path(dir, segments[start].name), segments[start].first_index.value(), after.value()));
  }
  bool removed = false;
  for (std::size_t i = 0; i < start; ++i) {
    NN_RETURN_IF_ERROR(fs.remove(join_path(dir, segments[i].name)));
    removed = true;
  }
  if (removed) NN_RETURN_IF_ERROR(fs.sync_dir(dir));
  LogIndex expected = segments[start].first_index;
  for (std::size_t i = start; i < segments.size(); ++i) {
    const std::string path = join_path(dir, segments[i].name);
    if (segments[i].first_index != expected) {
      return Status::corruption(fmt::format(
          "{}: segment starts at index {} but the previous one ended before index {}", path,
          segments[i].first_index.value(), expected.value()));
    }
    NN_RETURN_IF_ERROR(replay_segment(fs, path, segments[i], i + 1 == segments.size(), after,
                                      expected, apply, replay));
  }
  return replay;
}

Status remove_wal_segments_before(FileSystem& fs, const std::string& dir, LogIndex first_kept) {
  NN_ASSIGN_OR_RETURN(std::vector<Segment> segments, list_segments(fs, dir));
  bool removed = false;
  for (const Segment& segment : segments) {
    if (segment.first_index >= first_kept) break;
    NN_RETURN_IF_ERROR(fs.remove(join_path(dir, segment.name)));
    removed = true;
  }
  return removed ? fs.sync_dir(dir) : Status::ok();
}

}  // namespace nodenomad::storage
