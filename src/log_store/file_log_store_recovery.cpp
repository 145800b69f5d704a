// FileLogStore recovery: replays the segments of a directory into a LogState.
//
// Which segments count: sequence numbers are created without gaps, and
// compaction deletes the oldest segments in order, so a gap can only be left
// by a deletion the directory sync did not finish before a crash (a real file
// system may persist any subset of the removals). Every segment below the
// newest gap was being deleted, and the compaction record that allowed it was
// durable first, so replay starts after the gap and those leftovers are
// deleted again.
//
// What is refused (kCorruption, naming the file and the offset; nothing is
// modified): a bad record before the tail of any segment; any torn tail in a
// segment other than the newest (segments are fsynced before the next one is
// created, so only the newest may hold unsynced bytes); a segment that does
// not begin with its start record or whose start record disagrees with the
// records before it; records that cannot follow the log; and entries that
// are still part of the log but whose segment is gone.
#include <fmt/format.h>

#include <algorithm>

#include "common/record_io.hpp"
#include "log_store/file_log_store_impl.hpp"
#include "nodenomad/logging.hpp"

namespace nodenomad::file_log_store_internal {

namespace fmt_ = file_log_store_format;

namespace {

struct SegmentReplay {
  bool has_records = false;
  std::uint64_t valid_bytes = 0;
};

Status apply_record(LogState& state, const fmt_::Record& record, const EntryLocation& location) {
  return std::visit(
      [&](const auto& r) -> Status {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, fmt_::SegmentStart>) {
          return Status::corruption("a second segment start record inside the segment");
        } else if constexpr (std::is_same_v<T, fmt_::EntryView>) {
          return state.apply_entry(r.index, location);
        } else if constexpr (std::is_same_v<T, HardState>) {
          state.apply_hard_state(r);
          return Status::ok();
        } else if constexpr (std::is_same_v<T, fmt_::TruncateRecord>) {
          return state.apply_truncate(r.from);
        } else if constexpr (std::is_same_v<T, fmt_::CompactRecord>) {
          return state.apply_compact(r.snapshot);
        } else {
          return state.apply_install_snapshot(r.snapshot);
        }
      },
      record);
}

// Replays one segment into `state`. Only the newest segment (`newest`) may
// have its torn tail cut off; `first` starts the replay from its start record.
Result<SegmentReplay> replay_segment(FileSystem& fs, const std::string& path, std::uint64_t seq,
                                     bool first, bool newest, LogState& state) {
  SegmentReplay out;
  auto visit = [&](std::string_view payload, std::uint64_t offset) -> Status {
    auto context = [&](const Status& s) {
      return s.with_context(fmt::format("{}: record at offset {}", path, offset));
    };
    auto record = fmt_::decode(payload);
    if (!record.is_ok()) return context(record.status());
    if (!out.has_records) {
      out.has_records = true;
      const auto* start = std::get_if<fmt_::SegmentStart>(&record.value());
      if (start == nullptr)
        return context(Status::corruption("the segment does not begin with its start record"));
      if (start->seq != seq) {
        return context(Status::corruption(
            fmt::format("the start record names segment {}, not {}", start->seq, seq)));
      }
      return context(state.apply_segment_start(*start, first));
    }
    if (const auto* entry = std::get_if<fmt_::EntryView>(&record.value())) {
      const EntryLocation location{entry->term, seq, offset,
                                   static_cast<std::uint32_t>(record::framed_size(payload.size()))};
      return context(apply_record(state, record.value(), location));
    }
    return context(apply_record(state, record.value(), EntryLocation{}));
  };
  auto scanned = newest ? record::recover(fs, path, 0, visit) : record::scan(fs, path, 0, visit);
  if (!scanned.is_ok()) return std::move(scanned).take_status();
  if (scanned->torn_tail && !newest) {
    return Status::corruption(fmt::format(
        "{}: the record at offset {} is cut short or fails its checksum, in a segment that is "
        "not the newest (only the newest can have a torn tail); refusing to open",
        path, scanned->valid_bytes));
  }
  if (!out.has_records && (!newest || (first && seq != 1))) {
    return Status::corruption(
        fmt::format("{}: the segment holds no records, but {}; refusing to open", path,
                    newest ? "the segments before it are missing" : "a newer segment follows it"));
  }
  out.valid_bytes = scanned->valid_bytes;
  return out;
}

Result<std::vector<std::uint64_t>> list_segments(FileSystem& fs, const std::string& dir) {
  NN_ASSIGN_OR_RETURN(std::vector<std::string> names, fs.list(dir));
  std::vector<std::uint64_t> seqs;
  for (const std::string& name : names) {
    if (auto seq = fmt_::parse_segment_file_name(name)) seqs.push_back(*seq);
  }
  std::sort(seqs.begin(), seqs.end());
  return seqs;
}

// Removes the segments `seqs` and makes the removal durable.
Status remove_segments(FileSystem& fs, const std::string& dir,
                       const std::vector<std::uint64_t>& seqs) {
  if (seqs.empty()) return Status::ok();
  for (const std::uint64_t seq : seqs) {
    const Status removed = fs.remove(segment_path(dir, seq));
    if (!removed.is_ok() && !removed.is(StatusCode::kNotFound)) return removed;
  }
  return fs.sync_dir(dir);
}

// Opens the newest segment for appending and fsyncs it: its bytes may be in
// the OS cache only (a process killed before its sync), and the store is
// about to treat everything it replayed as durable.
Status reopen_active(FileSystem& fs, const std::string& dir, Recovered& rec) {
  const std::string path = segment_path(dir, rec.active_seq);
  NN_ASSIGN_OR_RETURN(rec.active_file, fs.open_writable(path, WriteMode::kAppend));
  if (rec.active_file->size() != rec.active_bytes) {
    return Status::io_error(fmt::format("{}: holds {} bytes after recovery, expected {}", path,
                                        rec.active_file->size(), rec.active_bytes));
  }
  return rec.active_file->sync();
}

}  // namespace

Result<Recovered> recover(FileSystem& fs, const std::string& dir) {
  NN_RETURN_IF_ERROR(fs.create_dirs(dir));
  NN_ASSIGN_OR_RETURN(std::vector<std::uint64_t> seqs, list_segments(fs, dir));
  std::size_t start = 0;
  for (std::size_t i = 1; i < seqs.size(); ++i) {
    if (seqs[i] != seqs[i - 1] + 1) start = i;
  }
  std::vector<std::uint64_t> doomed(seqs.begin(),
                                    seqs.begin() + static_cast<std::ptrdiff_t>(start));
  if (!doomed.empty()) {
    log(LogLevel::kWarn, "file_log_store",
        fmt::format("{}: {} segment(s) below {} are left over from an interrupted compaction and "
                    "will be deleted",
                    dir, doomed.size(), fmt_::segment_file_name(seqs[start])));
  }
  Recovered rec;
  for (std::size_t i = start; i < seqs.size(); ++i) {
    const bool newest = i + 1 == seqs.size();
    NN_ASSIGN_OR_RETURN(
        SegmentReplay replayed,
        replay_segment(fs, segment_path(dir, seqs[i]), seqs[i], i == start, newest, rec.state));
    if (newest) {
      rec.active_seq = seqs[i];
      rec.active_bytes = replayed.valid_bytes;
      rec.active_started = replayed.has_records;
    }
  }
  if (rec.state.has_absent_entries()) {
    return Status::corruption(fmt::format(
        "{}: entries from index {} on are part of the log but their segments are gone (no "
        "durable compaction covers them); refusing to open",
        dir, rec.state.first_index().value()));
  }
  if (rec.active_started) NN_RETURN_IF_ERROR(reopen_active(fs, dir, rec));
  // Segments holding no entry of the log are deleted now, as the compaction
  // that emptied them would have; the newest segment with a start record
  // stays, since replay begins there.
  rec.oldest_seq = seqs.empty() ? 1 : seqs[start];
  const std::uint64_t newest_started =
      rec.active_started || rec.active_seq == rec.oldest_seq ? rec.active_seq : rec.active_seq - 1;
  const std::uint64_t keep_from = rec.state.oldest_entry_segment().value_or(newest_started);
  for (std::uint64_t seq = rec.oldest_seq; seq < keep_from; ++seq) doomed.push_back(seq);
  rec.oldest_seq = std::max(rec.oldest_seq, keep_from);
  NN_RETURN_IF_ERROR(remove_segments(fs, dir, doomed));
  return rec;
}

}  // namespace nodenomad::file_log_store_internal
