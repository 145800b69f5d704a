// EngineCore: opening (newest snapshot + WAL replay), snapshots with WAL
// rotation, flush, and restoring from a snapshot stream.
#include <fmt/format.h>

#include "nodenomad/logging.hpp"
#include "storage/engine_core.hpp"
#include "storage/restore_writer.hpp"
#include "storage/snapshot.hpp"
#include "storage/snapshot_format.hpp"
#include "storage/wal_format.hpp"

namespace nodenomad::storage {
namespace {

// Snapshot files are written in chunks of this size.
constexpr std::size_t kSnapshotWriteChunkBytes = 1u << 20;

std::string restore_temp_name(LogIndex index) {
  return fmt::format("restore-{:020}.tmp", index.value());
}

// Removes snapshot and restore temp files that a crash left behind.
Status remove_leftover_temps(FileSystem& fs, const std::string& dir) {
  NN_ASSIGN_OR_RETURN(std::vector<std::string> names, fs.list(dir));
  bool removed = false;
  for (const std::string& name : names) {
    const bool temp = name.ends_with(kTempSuffix) &&
                      (name.starts_with("snapshot-") || name.starts_with("restore-"));
    if (!temp) continue;
    NN_RETURN_IF_ERROR(fs.remove(join_path(dir, name)));
    removed = true;
  }
  return removed ? fs.sync_dir(dir) : Status::ok();
}

}  // namespace

EngineCore::EngineCore(StorageOptions options, FileSystem& fs, Clock& clock)
    : options_(std::move(options)),
      fs_(fs),
      clock_(clock),
      persistent_(!options_.dir.empty()),
      limits_{options_.max_key_bytes, options_.max_value_bytes},
      state_(std::make_unique<KvState>(limits_)) {}

EngineCore::~EngineCore() {
  // A clean close makes even kNone's buffered writes durable.
  if (wal_ == nullptr || failed()) return;
  Status flushed = wal_->close();
  if (!flushed.is_ok()) {
    log(LogLevel::kError, "storage",
        fmt::format("closing the WAL failed: {}", flushed.to_string()));
  }
}

Result<std::unique_ptr<EngineCore>> EngineCore::open(StorageOptions options) {
  NN_RETURN_IF_ERROR(validate_storage_options(options));
  FileSystem& fs = options.file_system != nullptr ? *options.file_system
                                                  : PosixFileSystem::instance();
  Clock& clock = options.clock != nullptr ? *options.clock : SystemClock::instance();
  std::unique_ptr<EngineCore> core(new EngineCore(std::move(options), fs, clock));
  NN_RETURN_IF_ERROR(core->recover());
  return core;
}

Status EngineCore::recover() {
  if (persistent_) {
    NN_RETURN_IF_ERROR(fs_.create_dirs(options_.dir));
    NN_RETURN_IF_ERROR(remove_leftover_temps(fs_, options_.dir));
    NN_ASSIGN_OR_RETURN(std::optional<LogIndex> newest, find_newest_snapshot(fs_, options_.dir));
    if (newest) {
      NN_ASSIGN_OR_RETURN(state_, load_snapshot_file(
                                      fs_, join_path(options_.dir, snapshot_file_name(*newest)),
                                      limits_));
    }
    NN_RETURN_IF_ERROR(remove_snapshots_except(fs_, options_.dir, newest));
  }
  if (!standalone()) {
    // The records that captures kept alive come back to the apply thread,
    // which allocated them, to be freed a few per apply (apply(),
    // free_released_records()).
    state_->map().set_writer_frees(true);
  }
  if (standalone()) {
    if (persistent_) NN_RETURN_IF_ERROR(replay_wal_into_state());
    next_index_ = state_->last_applied().next();
    CommitQueueLimits limits{options_.max_batch_bytes,
                             options_.sync_policy == SyncPolicy::kEveryWrite
                                 ? std::size_t{1}
                                 : options_.max_batch_writes,
                             options_.max_pending_bytes, options_.max_pending_writes};
    queue_ = std::make_unique<CommitQueue>(
        limits, [this](std::span<PendingWrite> batch) { return commit_batch(batch); },
        [this] { maybe_snapshot(); });
  }
  return Status::ok();
}

namespace {

// Applies replayed WAL commands in groups. Replay is bound by the random
// memory accesses of the map lookups; looking up a whole group's keys first
// lets their cache misses overlap, and the in-order applies that follow then
// find the lines in the cache. The order of applies is the log's.
class ReplayApplier {
 public:
  explicit ReplayApplier(KvState& state) : state_(state) { arena_.reserve(kGroupBytes); }

  Status add(LogIndex index, std::string_view bytes) {
    if (bytes.size() > kGroupBytes) {  // a large value: no grouping needed
      flush();
      NN_ASSIGN_OR_RETURN(KvCommand command, decode_kv_command(bytes));
      apply(command, index);
      return Status::ok();
    }
    if (arena_.size() + bytes.size() > kGroupBytes || group_.size() == kGroupCommands) flush();
    // The arena never grows past its reserved size, so views into it hold.
    const std::size_t at = arena_.size();
    arena_.append(bytes);
    NN_ASSIGN_OR_RETURN(KvCommand command,
                        decode_kv_command(std::string_view(arena_).substr(at, bytes.size())));
    group_.push_back({std::move(command), index});
    return Status::ok();
  }

  void flush() {
    std::uintptr_t touched = 0;
    for (const Pending& p : group_) {
      if (p.command.type != KvCommandType::kExpire) {
        touched += reinterpret_cast<std::uintptr_t>(state_.map().find(p.command.key));
      }
    }
    asm volatile("" : : "r"(touched));  // keep the lookups: they are the point
    for (const Pending& p : group_) apply(p.command, p.index);
    group_.clear();
    arena_.clear();
  }

 private:
  static constexpr std::size_t kGroupCommands = 64;
  static constexpr std::size_t kGroupBytes = 64u << 10;
  struct Pending {
    KvCommand command;
    LogIndex index;
  };
  void apply(const KvCommand& command, LogIndex index) {
    (void)state_.apply(command);  // its answer was given before the restart
    state_.set_last_applied(index);
  }

  KvState& state_;
  std::string arena_;
  std::vector<Pending> group_;
};

}  // namespace

Status EngineCore::replay_wal_into_state() {
  const std::string dir = wal_dir();
  NN_RETURN_IF_ERROR(fs_.create_dirs(dir));
  KvState& state = *state_;
  const LogIndex after = state.last_applied();
  ReplayApplier applier(state);
  NN_ASSIGN_OR_RETURN(WalReplay replay,
                      replay_wal(fs_, dir, after, [&applier](LogIndex index, std::string_view bytes) {
                        return applier.add(index, bytes);
                      }));
  applier.flush();
  NN_ASSERT(state.last_applied() == replay.last_index, "replay applied through ",
            state.last_applied(), " but read through ", replay.last_index);
  NN_ASSIGN_OR_RETURN(wal_, WalWriter::create(fs_, dir, options_.sync_policy,
                                              options_.wal_buffer_bytes, replay.last_index.next(),
                                              replay.bytes));
  wal_bytes_.store(wal_->total_bytes(), std::memory_order_relaxed);
  log(LogLevel::kDebug, "storage",
      fmt::format("opened {}: snapshot at index {}, {} commands replayed from {} WAL segments "
                  "({} bytes), {} keys",
                  options_.dir, after.value(), replay.commands, replay.segments, replay.bytes,
                  state.map().size()));
  return Status::ok();
}

void EngineCore::maybe_snapshot() {
  if (!snapshot_wanted_.load(std::memory_order_relaxed)) return;
  if (!snapshot_wanted_.exchange(false)) return;
  // The commit loop that runs this hook commits what queued meanwhile.
  Status status = snapshot_impl(/*then_drive=*/false);
  if (!status.is_ok() && !status.is(StatusCode::kFailed)) {
    log(LogLevel::kError, "storage",
        fmt::format("automatic snapshot (max_wal_bytes {}) failed: {}", options_.max_wal_bytes,
                    status.to_string()));
  }
}

Status EngineCore::snapshot() { return snapshot_impl(/*then_drive=*/true); }

Status EngineCore::snapshot_impl(bool then_drive) {
  if (!persistent_) return Status::not_supported("snapshot() needs options.dir");
  std::unique_lock snapshot_lock(snapshot_mu_);
  if (failed()) return Status::failed("the storage engine is failed; no snapshot taken");
  std::shared_ptr<const CapturedState> captured;
  auto capture = [&] {
    std::shared_lock lock(*state_mu_);
    captured = capture_state(*state_, state_mu_);
  };
  if (standalone()) {
    // The only pause for writers: close the segment and capture references.
    // Writes queued meanwhile are committed after the file is written, not
    // before: driving now could keep this thread committing a busy
    // pipeline's writes and never write the snapshot. Until then, the next
    // writer to arrive commits the queue itself.
    Status rotated = queue_->run_exclusive(
        [&]() -> Status {
          Status status = wal_->rotate(next_index_);
          wal_bytes_.store(wal_->total_bytes(), std::memory_order_relaxed);
          wal_syncs_.store(wal_->sync_count(), std::memory_order_relaxed);
          if (!status.is_ok()) return status;
          capture();
          NN_ASSERT(captured->index.next() == next_index_, "applied ", captured->index,
                    " lags the log at ", next_index_);
          return Status::ok();
        },
        /*then_drive=*/false);
    if (!rotated.is_ok()) {
      enter_failed(rotated);
      return rotated;
    }
  } else {
    capture();
  }
  Status status = write_snapshot_and_compact(std::move(captured));
  if (status.is_ok()) {
    snapshots_written_.fetch_add(1, std::memory_order_relaxed);
  } else {
    enter_failed(status);  // answers everything queued, if it failed
  }
  snapshot_lock.unlock();  // committing may take a while; other snapshots need not wait
  if (standalone() && then_drive) queue_->drive_pending();
  return status;
}

Status EngineCore::write_snapshot_and_compact(std::shared_ptr<const CapturedState> captured) {
  const LogIndex index = captured->index;
  SnapshotStream stream(std::move(captured), options_.snapshot_record_bytes);
  NN_RETURN_IF_ERROR(write_snapshot_file(fs_, options_.dir, stream, kSnapshotWriteChunkBytes));
  NN_RETURN_IF_ERROR(remove_snapshots_except(fs_, options_.dir, index));
  if (!standalone()) return Status::ok();
  return remove_wal_segments_before(fs_, wal_dir(), index.next());
}

Status EngineCore::flush() {
  if (!standalone() || wal_ == nullptr) return Status::ok();
  return queue_->run_exclusive([this] { return wal_->flush(); });
}

namespace {

// Receives a snapshot stream: parses it as it arrives (so a bad stream is
// refused early and memory stays at one record plus the new state) and, with
// a directory, hands it to a RestoreFileWriter for a temp file that becomes
// the snapshot file. The parse runs on the calling thread (it builds the new
// state); the file is written on the writer's thread unless the options say
// otherwise.
class RestoreSink final : public SnapshotSink {
 public:
  RestoreSink(EngineCore& core, LogIndex index, KvLimits limits,
              std::unique_ptr<RestoreFileWriter> writer, std::string temp_path, FileSystem& fs)
      : core_(core),
        index_(index),
        parser_(limits, fmt::format("restore at index {}", index.value())),
        writer_(std::move(writer)),
        temp_path_(std::move(temp_path)),
        fs_(fs) {}

  ~RestoreSink() override {
    if (writer_ == nullptr) return;
    writer_.reset();               // joins the writer thread and closes the file first
    (void)fs_.remove(temp_path_);  // best effort; open() removes leftovers too
  }

  Status write_chunk(std::string_view chunk) override {
    if (done_) return Status::invalid_argument("write_chunk after finish");
    NN_RETURN_IF_ERROR(parser_.feed(chunk));
    if (writer_ != nullptr) NN_RETURN_IF_ERROR(checked(writer_->append(chunk)));
    return Status::ok();
  }

  Status finish() override {
    if (done_) return Status::invalid_argument("finish called twice");
    NN_ASSIGN_OR_RETURN(std::unique_ptr<KvState> state, parser_.finish());
    if (state->last_applied() != index_) {
      return Status::corruption(fmt::format("restore at index {} received a snapshot of index {}",
                                            index_.value(), state->last_applied().value()));
    }
    std::unique_ptr<WritableFile> file;
    if (writer_ != nullptr) {
      Result<std::unique_ptr<WritableFile>> written = writer_->finish();
      if (!written.is_ok()) return checked(written.status());
      file = std::move(written).value();
    }
    done_ = true;
    writer_.reset();
    return core_.install_restored(std::move(state), std::move(file), temp_path_);
  }

 private:
  // A failed sync fails the engine, as a failed fsync anywhere does; a
  // failed write only fails this restore.
  Status checked(Status status) {
    if (!status.is_ok() && writer_->sync_failed() && !reported_sync_failure_) {
      reported_sync_failure_ = true;
      core_.enter_failed(status);
    }
    return status;
  }

  EngineCore& core_;
  LogIndex index_;
  SnapshotParser parser_;
  std::unique_ptr<RestoreFileWriter> writer_;  // null without a directory
  std::string temp_path_;
  FileSystem& fs_;
  bool done_ = false;
  bool reported_sync_failure_ = false;
};

}  // namespace

Result<std::unique_ptr<SnapshotSink>> EngineCore::begin_restore(LogIndex index) {
  if (standalone()) {
    return Status::not_supported(
        "begin_restore() is for replicated mode; a standalone engine owns its WAL");
  }
  if (failed_.load(std::memory_order_acquire)) {
    return Status::failed("the storage engine is failed");
  }
  std::unique_ptr<RestoreFileWriter> writer;
  std::string temp_path;
  if (persistent_) {
    temp_path = join_path(options_.dir, restore_temp_name(index));
    NN_ASSIGN_OR_RETURN(auto file, fs_.open_writable(temp_path, WriteMode::kTruncate));
    RestoreWriterOptions writer_options;
    writer_options.use_thread = options_.restore_writer_thread;
    writer_options.max_queued_bytes = options_.restore_max_queued_bytes;
    writer_options.sync_every_bytes = options_.restore_sync_every_bytes;
    writer_options.writeback_every_bytes = options_.restore_writeback_every_bytes;
    writer = std::make_unique<RestoreFileWriter>(std::move(file), writer_options);
  }
  return std::unique_ptr<SnapshotSink>(
      std::make_unique<RestoreSink>(*this, index, limits_, std::move(writer), temp_path, fs_));
}

Status EngineCore::install_restored(std::unique_ptr<KvState> state,
                                    std::unique_ptr<WritableFile> file,
                                    const std::string& temp_path) {
  std::lock_guard snapshot_lock(snapshot_mu_);
  if (file != nullptr) {
    const LogIndex index = state->last_applied();
    Status status = file->sync();
    if (status.is_ok()) status = file->close();
    if (status.is_ok()) {
      status = fs_.rename(temp_path, join_path(options_.dir, snapshot_file_name(index)));
    }
    if (status.is_ok()) status = fs_.sync_dir(options_.dir);
    if (status.is_ok()) status = remove_snapshots_except(fs_, options_.dir, index);
    if (!status.is_ok()) {
      enter_failed(status);
      return status;
    }
  }
  std::unique_ptr<KvState> old;
  state->map().set_writer_frees(true);  // replicated mode: see recover()
  {
    std::unique_lock lock(*state_mu_);
    old = std::exchange(state_, std::move(state));
  }
  return Status::ok();  // `old` is freed here, outside the lock
}

}  // namespace nodenomad::storage
