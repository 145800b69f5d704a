// FileLogStore: opening, mutations (encode, queue, apply) and reads.
#include <fmt/format.h>

#include <algorithm>

#include "log_store/file_log_store_impl.hpp"
#include "log_store/log_store_checks.hpp"

namespace nodenomad {

namespace fmt_ = file_log_store_format;
namespace checks = log_store_checks;
using file_log_store_internal::FileLogStoreImpl;

namespace {

// Bytes read at once when entries() reads a run of records from one segment.
constexpr std::uint64_t kReadAheadBytes = 1ull << 20;
// The payload encoding buffer is reused between mutations up to this size;
// one giant entry does not pin its allocation for the store's lifetime.
constexpr std::size_t kMaxRetainedScratchBytes = 1u << 20;

Status validate_options(const FileLogStoreOptions& o) {
  if (o.segment_bytes < FileLogStoreOptions::kMinSegmentBytes ||
      o.segment_bytes > FileLogStoreOptions::kMaxSegmentBytes) {
    return Status::invalid_argument(fmt::format(
        "FileLogStoreOptions.segment_bytes is {}; it must lie in [{}, {}]", o.segment_bytes,
        FileLogStoreOptions::kMinSegmentBytes, FileLogStoreOptions::kMaxSegmentBytes));
  }
  if (o.max_unwritten_bytes == 0) {
    return Status::invalid_argument("FileLogStoreOptions.max_unwritten_bytes must be at least 1");
  }
  return Status::ok();
}

// Decodes the framed entry record read back for `index` and checks that it is
// the entry the index expects. Its data is a slice of `owner` when one is
// given (`framed` lies in it), else a copy.
Result<Entry> entry_from_record(std::string_view framed, LogIndex index, Term term,
                                const std::shared_ptr<const std::string>* owner = nullptr) {
  NN_ASSIGN_OR_RETURN(std::string_view payload, fmt_::unframe(framed));
  NN_ASSIGN_OR_RETURN(fmt_::Record record, fmt_::decode(payload));
  const auto* view = std::get_if<fmt_::EntryView>(&record);
  if (view == nullptr || view->index != index || view->term != term) {
    return Status::corruption(fmt::format("the record is not the entry at index {} term {}",
                                          index.value(), term.value()));
  }
  if (owner != nullptr) {
    return Entry{view->term, view->index, view->type, SharedBytes::slice(*owner, view->data)};
  }
  return Entry{view->term, view->index, view->type, SharedBytes(view->data)};
}

}  // namespace

Result<std::unique_ptr<FileLogStore>> FileLogStore::open(FileSystem& fs, std::string dir,
                                                         FileLogStoreOptions options) {
  NN_RETURN_IF_ERROR(validate_options(options));
  NN_ASSIGN_OR_RETURN(file_log_store_internal::Recovered recovered,
                      file_log_store_internal::recover(fs, dir));
  return std::unique_ptr<FileLogStore>(
      std::make_unique<FileLogStoreImpl>(fs, std::move(dir), options, std::move(recovered)));
}

namespace file_log_store_internal {

std::string segment_path(const std::string& dir, std::uint64_t seq) {
  return join_path(dir, fmt_::segment_file_name(seq));
}

FileLogStoreImpl::FileLogStoreImpl(FileSystem& fs, std::string dir, FileLogStoreOptions options,
                                   Recovered recovered)
    : fs_(fs),
      dir_(std::move(dir)),
      options_(options),
      state_(std::move(recovered.state)),
      active_seq_(recovered.active_seq),
      active_bytes_(recovered.active_bytes),
      active_started_(recovered.active_started),
      durable_last_index_(state_.last_index()),
      next_deletion_seq_(recovered.oldest_seq),
      oldest_seq_(recovered.oldest_seq),
      file_(std::move(recovered.active_file)),
      file_seq_(file_ ? recovered.active_seq : 0) {}

FileLogStoreImpl::~FileLogStoreImpl() {
  std::lock_guard lock(mu_);
  NN_ASSERT(!writer_busy_, "FileLogStore destroyed while a thread holds its writer role");
}

Status FileLogStoreImpl::failed_status_locked() const {
  return Status::failed(fmt::format(
      "the file log store in {} stopped after an I/O error and accepts no more changes: {}", dir_,
      failure_.to_string()));
}

// --- reads ---------------------------------------------------------------------

LogIndex FileLogStoreImpl::first_index() const {
  std::lock_guard lock(mu_);
  return state_.first_index();
}

LogIndex FileLogStoreImpl::last_index() const {
  std::lock_guard lock(mu_);
  return state_.last_index();
}

Result<Term> FileLogStoreImpl::term_at(LogIndex index) const {
  std::lock_guard lock(mu_);
  if (index < state_.snapshot().index || index > state_.last_index()) {
    return checks::term_not_found(index, state_.snapshot().index, state_.last_index());
  }
  return state_.known_term(index);
}

HardState FileLogStoreImpl::hard_state() const {
  std::lock_guard lock(mu_);
  return state_.hard_state();
}

SnapshotMeta FileLogStoreImpl::snapshot_meta() const {
  std::lock_guard lock(mu_);
  return state_.snapshot();
}

Result<std::vector<Entry>> FileLogStoreImpl::entries(LogIndex lo, LogIndex hi,
                                                     std::uint64_t max_bytes) const {
  std::vector<Entry> out;
  std::vector<FileRead> reads;
  {
    std::lock_guard lock(mu_);
    NN_RETURN_IF_ERROR(
        checks::check_entries_range(lo, hi, state_.first_index(), state_.last_index()));
    const std::uint64_t n = checks::count_within_bytes(
        hi - lo, max_bytes, [&](std::uint64_t i) { return state_.location(lo + i).data_bytes(); });
    out.resize(static_cast<std::size_t>(n));
    for (std::size_t slot = 0; slot < out.size(); ++slot) {
      const LogIndex index = lo + slot;
      const EntryLocation& loc = state_.location(index);
      const Chunk* chunk = unwritten_chunk_locked(loc);
      if (chunk == nullptr) {
        reads.push_back(FileRead{slot, index, loc});
        continue;
      }
      const std::string_view framed =
          std::string_view(chunk->bytes)
              .substr(static_cast<std::size_t>(loc.offset - chunk->offset), loc.framed_bytes);
      auto entry = entry_from_record(framed, index, loc.term);
      NN_ASSERT(entry.is_ok(), "queued record of entry ", index, ": ", entry.status().to_string());
      out[slot] = std::move(entry).value();
    }
  }
  if (reads.empty()) return out;
  Status status = read_from_files(reads, out);
  if (!status.is_ok()) {
    // A compaction that ran meanwhile may have deleted the segment: that is
    // the caller's range being compacted, not a disk error.
    std::lock_guard lock(mu_);
    NN_RETURN_IF_ERROR(
        checks::check_entries_range(lo, hi, state_.first_index(), state_.last_index()));
    return status;
  }
  return out;
}

const FileLogStoreImpl::Chunk* FileLogStoreImpl::unwritten_chunk_locked(
    const EntryLocation& loc) const {
  if (chunks_.empty()) return nullptr;
  const Chunk& front = chunks_.front();
  if (loc.seq < front.seq || (loc.seq == front.seq && loc.offset < front.offset)) return nullptr;
  for (const Chunk& chunk : chunks_) {
    if (chunk.seq == loc.seq && loc.offset >= chunk.offset &&
        loc.offset + loc.framed_bytes <= chunk.offset + chunk.bytes.size()) {
      return &chunk;
    }
  }
  NN_UNREACHABLE("entry record at segment ", loc.seq, " offset ", loc.offset,
                 " is neither written nor queued");
  return nullptr;
}

Status FileLogStoreImpl::read_from_files(std::span<const FileRead> reads,
                                         std::vector<Entry>& out) const {
  std::size_t begin = 0;
  while (begin < reads.size()) {
    std::size_t end = begin + 1;
    while (end < reads.size() && reads[end].location.seq == reads[begin].location.seq) ++end;
    NN_RETURN_IF_ERROR(read_segment(reads.subspan(begin, end - begin), out));
    begin = end;
  }
  return Status::ok();
}

// Reads the records of `reads` (all in one segment, in log order) through a
// read-ahead buffer, so a run of adjacent records costs one read.
Status FileLogStoreImpl::read_segment(std::span<const FileRead> reads,
                                      std::vector<Entry>& out) const {
  const std::uint64_t seq = reads.front().location.seq;
  NN_ASSIGN_OR_RETURN(std::unique_ptr<ReadableFile> file, checkout_reader(seq));
  const EntryLocation& last = reads.back().location;
  const std::uint64_t run_end = last.offset + last.framed_bytes;
  // The entries are slices of the buffer they were read into (no copy, no
  // allocation each): it holds the run of records asked for and little else,
  // so the slices keep nothing alive that is not theirs. A refill takes a
  // fresh buffer, as the entries read so far still hold the old one.
  std::shared_ptr<std::string> buffer;
  std::shared_ptr<const std::string> owner;  // the buffer, once filled
  std::uint64_t buffer_start = 0;
  for (const FileRead& r : reads) {
    const EntryLocation& loc = r.location;
    if (buffer == nullptr || loc.offset < buffer_start ||
        loc.offset + loc.framed_bytes > buffer_start + buffer->size()) {
      const std::uint64_t ahead =
          std::min(kReadAheadBytes, run_end - std::min(run_end, loc.offset));
      buffer = std::make_shared<std::string>(
          static_cast<std::size_t>(std::max<std::uint64_t>(loc.framed_bytes, ahead)), '\0');
      std::size_t filled = 0;
      while (filled < buffer->size()) {
        NN_ASSIGN_OR_RETURN(
            std::size_t got,
            file->read_at(loc.offset + filled,
                          std::span<char>(buffer->data() + filled, buffer->size() - filled)));
        if (got == 0) break;
        filled += got;
      }
      if (filled < loc.framed_bytes) {
        return Status::corruption(
            fmt::format("{}: entry {} at offset {} runs past the end of the file", file->path(),
                        r.index.value(), loc.offset));
      }
      buffer->resize(filled);
      buffer_start = loc.offset;
      owner = buffer;
    }
    const std::string_view framed = std::string_view(*owner).substr(
        static_cast<std::size_t>(loc.offset - buffer_start), loc.framed_bytes);
    auto entry = entry_from_record(framed, r.index, loc.term, &owner);
    if (!entry.is_ok()) {
      return entry.status().with_context(
          fmt::format("{}: entry {} at offset {}", file->path(), r.index.value(), loc.offset));
    }
    out[r.slot] = std::move(entry).value();
  }
  return_reader(seq, std::move(file));
  return Status::ok();
}

Result<std::unique_ptr<ReadableFile>> FileLogStoreImpl::checkout_reader(std::uint64_t seq) const {
  {
    std::lock_guard lock(mu_);
    auto it = idle_readers_.find(seq);
    if (it != idle_readers_.end()) {
      std::unique_ptr<ReadableFile> file = std::move(it->second);
      idle_readers_.erase(it);
      return file;
    }
  }
  return fs_.open_readable(segment_path(dir_, seq));
}

void FileLogStoreImpl::return_reader(std::uint64_t seq, std::unique_ptr<ReadableFile> file) const {
  std::lock_guard lock(mu_);
  if (seq >= oldest_seq_ && idle_readers_.size() < options_.max_idle_read_files) {
    idle_readers_.emplace(seq, std::move(file));
  }
}

FileLogStoreStats FileLogStoreImpl::stats() const {
  std::lock_guard lock(mu_);
  FileLogStoreStats s = counters_;
  s.unwritten_bytes = queued_stream_bytes_ - written_stream_bytes_;
  s.waiting_sync_callers = waiting_sync_callers_;
  s.oldest_segment = oldest_seq_;
  s.active_segment = active_seq_;
  s.failed = !failure_.is_ok();
  return s;
}

// --- mutations -----------------------------------------------------------------

FileLogStoreImpl::RecordPlace FileLogStoreImpl::queue_payload_locked(std::string_view payload) {
  if (!active_started_ || active_bytes_ >= options_.segment_bytes) start_segment_locked();
  if (chunks_.size() == chunks_in_flight_ || chunks_.back().seq != active_seq_) {
    chunks_.push_back(Chunk{active_seq_, active_bytes_, {}});
  }
  Chunk& chunk = chunks_.back();
  const RecordPlace place{active_seq_, active_bytes_,
                          static_cast<std::uint32_t>(record::framed_size(payload.size()))};
  record::encode(chunk.bytes, payload);
  active_bytes_ += place.framed_bytes;
  queued_stream_bytes_ += place.framed_bytes;
  return place;
}

// Starts the next segment (or the first one) with a record restating the
// state as it is at this point of the stream.
void FileLogStoreImpl::start_segment_locked() {
  if (active_started_) {
    ++active_seq_;
    active_bytes_ = 0;
  }
  NN_ASSERT(active_bytes_ == 0, "segment ", active_seq_, " started at offset ", active_bytes_);
  active_started_ = true;
  fmt_::SegmentStart start;
  start.seq = active_seq_;
  start.last_index = state_.last_index();
  start.hard_state = state_.hard_state();
  start.snapshot = state_.snapshot();
  std::string payload;
  fmt_::encode_segment_start(payload, start);
  chunks_.push_back(Chunk{active_seq_, 0, {}});
  record::encode(chunks_.back().bytes, payload);
  active_bytes_ = chunks_.back().bytes.size();
  queued_stream_bytes_ += active_bytes_;
}

// Segments that no longer hold any entry of the log are deleted once the
// record that dropped their entries is durable.
void FileLogStoreImpl::schedule_deletions_locked() {
  const std::uint64_t oldest_needed = state_.oldest_entry_segment().value_or(active_seq_);
  for (; next_deletion_seq_ < oldest_needed; ++next_deletion_seq_) {
    deletions_.push_back(Deletion{next_deletion_seq_, queued_stream_bytes_});
  }
}

Status FileLogStoreImpl::append(std::span<const Entry> entries) {
  if (entries.empty()) return Status::ok();
  std::unique_lock lock(mu_);
  if (!failure_.is_ok()) return failed_status_locked();
  NN_RETURN_IF_ERROR(
      checks::check_append_indexes(entries, state_.first_index(), state_.last_index()));
  NN_RETURN_IF_ERROR(
      checks::check_append_terms(entries, state_.known_term(entries.front().index.prev())));
  for (const Entry& e : entries) {
    if (e.data.size() > fmt_::kMaxEntryDataBytes) {
      return Status::invalid_argument(
          fmt::format("append: entry {} holds {} bytes, over the {}-byte limit", e.index.value(),
                      e.data.size(), fmt_::kMaxEntryDataBytes));
    }
  }
  for (const Entry& e : entries) {
    payload_scratch_.clear();
    fmt_::encode_entry(payload_scratch_, e);
    const RecordPlace place = queue_payload_locked(payload_scratch_);
    const Status applied = state_.apply_entry(
        e.index, EntryLocation{e.term, place.seq, place.offset, place.framed_bytes});
    NN_ASSERT(applied.is_ok(), applied.to_string());
  }
  if (payload_scratch_.capacity() > kMaxRetainedScratchBytes) std::string().swap(payload_scratch_);
  return write_if_over_limit_locked(lock);
}

Status FileLogStoreImpl::truncate_suffix(LogIndex from) {
  std::unique_lock lock(mu_);
  if (!failure_.is_ok()) return failed_status_locked();
  NN_RETURN_IF_ERROR(checks::check_truncate(from, state_.first_index(), state_.last_index()));
  if (from > state_.last_index()) return Status::ok();  // nothing to drop, nothing to record
  payload_scratch_.clear();
  fmt_::encode_truncate(payload_scratch_, from);
  queue_payload_locked(payload_scratch_);
  const Status applied = state_.apply_truncate(from);
  NN_ASSERT(applied.is_ok(), applied.to_string());
  return write_if_over_limit_locked(lock);
}

Status FileLogStoreImpl::set_hard_state(const HardState& state) {
  std::unique_lock lock(mu_);
  if (!failure_.is_ok()) return failed_status_locked();
  payload_scratch_.clear();
  fmt_::encode_hard_state(payload_scratch_, state);
  queue_payload_locked(payload_scratch_);
  state_.apply_hard_state(state);
  return write_if_over_limit_locked(lock);
}

Status FileLogStoreImpl::compact(const SnapshotMeta& meta) {
  std::unique_lock lock(mu_);
  if (!failure_.is_ok()) return failed_status_locked();
  NN_RETURN_IF_ERROR(checks::check_compact_index(meta, state_.first_index(), state_.last_index()));
  NN_RETURN_IF_ERROR(checks::check_compact_term(meta, state_.known_term(meta.index)));
  payload_scratch_.clear();
  fmt_::encode_compact(payload_scratch_, meta);
  queue_payload_locked(payload_scratch_);
  const Status applied = state_.apply_compact(meta);
  NN_ASSERT(applied.is_ok(), applied.to_string());
  schedule_deletions_locked();
  return write_if_over_limit_locked(lock);
}

Status FileLogStoreImpl::install_snapshot(const SnapshotMeta& meta) {
  std::unique_lock lock(mu_);
  if (!failure_.is_ok()) return failed_status_locked();
  NN_RETURN_IF_ERROR(checks::check_install(meta, state_.snapshot()));
  payload_scratch_.clear();
  fmt_::encode_install_snapshot(payload_scratch_, meta);
  queue_payload_locked(payload_scratch_);
  const Status applied = state_.apply_install_snapshot(meta);
  NN_ASSERT(applied.is_ok(), applied.to_string());
  schedule_deletions_locked();
  return write_if_over_limit_locked(lock);
}

}  // namespace file_log_store_internal
}  // namespace nodenomad
