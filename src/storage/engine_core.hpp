// EngineCore: the implementation behind StorageEngine (which only forwards,
// so that no Boost type or lock shows in the public header).
//
// Locks and roles, in the order they may nest:
//   - snapshot_mu_: one snapshot (or restore install) at a time.
//   - the CommitQueue's leadership: whoever leads a round (or runs
//     exclusively) is the only one touching wal_, next_index_ and framed_.
//   - state_mu_: readers shared; applying a batch, and swapping in a restored
//     state, exclusive. Never held across I/O or a callback. A capture of a
//     large state is listed under it in steps, by its first reader, behind
//     waiting writers (state_lock.hpp), so a capture holds writes up for one
//     step (about 0.2 ms), not for the whole list (10-16 ms at a million keys).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <vector>

#include "nodenomad/clock.hpp"
#include "nodenomad/file_system.hpp"
#include "nodenomad/storage/storage_engine.hpp"
#include "storage/commit_queue.hpp"
#include "storage/kv_state.hpp"
#include "storage/state_lock.hpp"
#include "storage/wal.hpp"

namespace nodenomad {
// What StorageEngine::take_state() hands out: the records, dropped from the back.
struct StateRemains::Records {
  std::vector<storage::RecordRef> refs;
};
}  // namespace nodenomad

namespace nodenomad::storage {

struct CapturedState;

class EngineCore {
 public:
  static Result<std::unique_ptr<EngineCore>> open(StorageOptions options);
  ~EngineCore();
  EngineCore(const EngineCore&) = delete;
  EngineCore& operator=(const EngineCore&) = delete;

  const StorageOptions& options() const { return options_; }
  Clock& clock() const { return clock_; }

  // Reads.
  Status get_into(std::string_view key, WallTime now, ReadResult& out) const;
  Status get_many(std::span<const std::string_view> keys, WallTime now,
                  std::span<ReadResult> out) const;
  std::vector<DueKey> find_due_keys(WallTime now, std::size_t max_keys) const;
  Status validate_command(const KvCommand& command) const;
  StorageStats stats() const;
  bool failed() const;
  LogIndex last_applied_index() const;

  // Standalone writes.
  WriteResult write(const KvCommand& command);
  void submit(const KvCommand& command, WriteCallback done);
  void submit_all(std::span<const KvCommand> commands,
                  const std::function<void(std::size_t, WriteResult)>& done);
  WriteResult expire_due(WallTime now, std::size_t max_keys);
  Status snapshot();
  Status flush();

  // Replicated mode.
  Result<std::string> apply(LogIndex index, std::string_view command);
  Result<std::unique_ptr<SnapshotSource>> open_snapshot();
  Result<std::unique_ptr<SnapshotSink>> begin_restore(LogIndex index);
  // Called by a restore sink's finish(): persists the restored snapshot (if
  // the engine has a directory) and swaps it in.
  Status install_restored(std::unique_ptr<KvState> state, std::unique_ptr<WritableFile> file,
                          const std::string& temp_path);

  // Puts the engine in the failed state for good, after a failed WAL write
  // or fsync (a restore sink calls it when its file's sync fails).
  void enter_failed(const Status& reason);

  // Digests and bucket repair (storage_engine.hpp says the contracts).
  std::shared_ptr<const StateCapture> capture() const;
  ShardDigest digest() const;
  // Records handed back by captures, freed with each apply (replicated mode).
  static constexpr std::size_t kReleasedPerApply = 1;
  std::size_t free_released_records(std::size_t max);
  std::unique_ptr<StateRemains> take_state();
  Status replace_buckets(const std::vector<std::uint32_t>& buckets,
                         const std::vector<std::string>& chunks);

 private:
  EngineCore(StorageOptions options, FileSystem& fs, Clock& clock);
  Status recover();
  Status replay_wal_into_state();
  Status commit_batch(std::span<PendingWrite> batch);
  // Builds the WAL payload of a validated command into `payload`, or says
  // why the command is refused.
  Status make_payload(const KvCommand& command, std::string& payload) const;
  void maybe_snapshot();
  // then_drive: commit what queued during the snapshot (false from the
  // commit hook, whose caller goes on committing).
  Status snapshot_impl(bool then_drive);
  // Writes the snapshot file of `captured`, then removes what it covers.
  Status write_snapshot_and_compact(std::shared_ptr<const CapturedState> captured);
  std::string wal_dir() const { return options_.wal_dir.empty() ? options_.dir : options_.wal_dir; }
  bool standalone() const { return options_.mode == StorageMode::kStandalone; }

  const StorageOptions options_;
  FileSystem& fs_;
  Clock& clock_;
  const bool persistent_;
  const KvLimits limits_;

  // Shared with the captures, which list themselves under it (state_lock.hpp).
  const std::shared_ptr<StateLock> state_mu_ = std::make_shared<StateLock>();
  std::unique_ptr<KvState> state_;  // guarded by state_mu_

  // Touched only by the commit leader (or under CommitQueue::run_exclusive).
  std::unique_ptr<WalWriter> wal_;
  LogIndex next_index_;
  std::string framed_;
  std::unique_ptr<CommitQueue> queue_;  // standalone only

  std::mutex snapshot_mu_;
  std::atomic<bool> snapshot_wanted_{false};
  std::atomic<bool> failed_{false};  // replicated mode; standalone asks the queue
  std::atomic<std::uint64_t> snapshots_written_{0};
  std::atomic<std::uint64_t> wal_bytes_{0};
  std::atomic<std::uint64_t> wal_syncs_{0};
};

}  // namespace nodenomad::storage
