// StorageEngine: one shard's key-value state (set / get / remove,
// compare-and-set on per-key versions, TTL), its snapshots, and in
// standalone mode its own write-ahead log. docs/storage.md explains the
// design; the on-disk formats are drawn in src/storage/*_format.hpp.
//
// Two modes (StorageOptions::mode), one apply path. Every change is a
// KvCommand (command.hpp) applied in log order, and apply never reads a
// clock: the command carries the proposer's time.
//   - kStandalone: the write API below logs each command in the engine's WAL
//     and applies it once it is durable (sync policy permitting), so a read
//     never sees a write that a crash could take back.
//   - kReplicated: the Raft log is the WAL. Commands arrive through the
//     StateMachine interface (apply, begin_restore); the write API answers
//     kNotSupported. snapshot() writes the state and last_applied_index() to
//     a snapshot file so the Raft log can be compacted.
//
// Thread safety:
//   - Reads (get, get_into, get_many, find_due_keys, validate_command, stats,
//     failed, last_applied_index, open_snapshot, capture) may be called from
//     any thread at any time, in both modes.
//   - Standalone writes (set, compare_and_set, remove, remove_if_version,
//     expire_due, submit, submit_all, snapshot, flush) may be called from
//     any thread.
//     Blocking writes return once the write is committed; submit() answers
//     through its callback. The engine starts no thread: a writing thread
//     may be lent to commit other writers' batches (group commit) and runs
//     their callbacks. A callback may submit() again, but must not call a
//     blocking write, snapshot() or flush() (asserted: it would wait for the
//     round that is running it).
//   - apply(), begin_restore() and replace_buckets() (replicated mode) are
//     called from one thread, as state_machine.hpp says; reads and capture()
//     may run concurrently. A StateCapture may be used from any thread.
//   - Nothing may be in flight when the engine is destroyed. A SnapshotSource
//     and a StateCapture may outlive the engine (they keep what they read
//     alive, and free it on whichever thread drops them last); a
//     SnapshotSink may not.
//   - The engine starts no thread, with one exception: a restore sink with a
//     directory writes its file on a thread of its own (one per restore,
//     joined by finish() or the sink's destruction), unless
//     StorageOptions::restore_writer_thread is off.
//
// Errors: a write's WriteResult.status is one of kOk, kVersionMismatch
// (current_version says what the key holds), kInvalidArgument (a limit: the
// message names it and the size; nothing was logged), kBusy (the commit
// queue is full; nothing was logged), kFailed, kNotSupported. A failed WAL
// write or fsync puts the engine in a failed state for good: the writes of
// that batch answer kFailed with an unknown outcome, every later write
// answers kFailed, reads go on serving the state as it was. Nothing is
// retried; reopen the engine to recover from the WAL.
//
// Ownership: open() returns the engine as a unique_ptr. The FileSystem and
// Clock in the options are not owned and must outlive it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "nodenomad/clock.hpp"
#include "nodenomad/state_machine.hpp"
#include "nodenomad/status.hpp"
#include "nodenomad/storage/command.hpp"
#include "nodenomad/storage/shard_digest.hpp"
#include "nodenomad/storage/storage_options.hpp"
#include "nodenomad/types.hpp"

namespace nodenomad {

namespace storage {
class EngineCore;
struct CapturedState;
}

struct ReadResult {
  std::string value;
  std::uint64_t version = 0;
  std::optional<WallTime> expiry;  // none: the key never expires
};

struct WriteOptions {
  std::optional<WallTime> expiry;           // absolute; none = never expires
  std::optional<std::uint64_t> if_version;  // compare-and-set; 0 = only if absent
};

// An asynchronous write (submit). kExpire is not accepted here: expire_due().
struct WriteRequest {
  KvCommandType type = KvCommandType::kSet;
  std::string key;
  std::string value;  // kSet only
  WriteOptions options;
};

using WriteCallback = std::function<void(WriteResult)>;

// A key whose expiry has passed (what the Raft leader proposes to expire).
struct DueKey {
  std::string key;
  std::uint64_t version = 0;
  WallTime expiry{};
};

struct StorageStats {
  std::uint64_t keys = 0;              // stored, including expired-but-not-yet-removed
  std::uint64_t bytes = 0;             // keys, values and per-record headers
  std::uint64_t keys_with_expiry = 0;
  std::uint64_t version_floor = 0;     // highest version ever removed or expired
  LogIndex last_applied;
  std::uint64_t wal_bytes = 0;         // standalone: WAL bytes since the last snapshot
  std::uint64_t wal_syncs = 0;         // standalone: fsyncs of WAL segments
  std::uint64_t batches_committed = 0; // standalone: commit rounds
  std::uint64_t writes_committed = 0;  // standalone: writes through the commit queue
  std::uint64_t snapshots_written = 0;
  bool failed = false;
};

// The records of a state that left its engine (StorageEngine::take_state()),
// freed a slice at a time. Destroying it frees what is left at once.
// Thread safety: one thread at a time.
class StateRemains {
 public:
  ~StateRemains();
  StateRemains(const StateRemains&) = delete;
  StateRemains& operator=(const StateRemains&) = delete;
  // Frees up to `max_records` records; true once none is left.
  bool release(std::size_t max_records);
  std::size_t records_left() const;

 private:
  friend class storage::EngineCore;
  struct Records;
  explicit StateRemains(std::unique_ptr<Records> records);
  std::unique_ptr<Records> records_;
};

// A kExpire command for `due` stamped with `now`; its views point into `due`.
KvCommand make_expire_command(WallTime now, const std::vector<DueKey>& due);

// An immutable point-in-time view of one engine's state, from
// StorageEngine::capture(): what a shard's digest and bucket repair read.
//
// Thread safety: every method is const and may run on any thread, while the
// engine goes on applying; share it through the shared_ptr. It may outlive
// the engine. Memory: every record it covers that is overwritten or removed
// since stays in memory while it lives (as for a snapshot stream,
// docs/storage.md "Snapshots").
class StateCapture {
 public:
  LogIndex index() const;                  // the applied index it reflects
  std::uint64_t keys() const;              // stored keys, expired-but-not-removed included
  std::uint64_t version_floor() const;
  // The digest of the captured state (shard_digest.hpp): O(1), from the
  // sums the engine keeps up to date as records come and go, copied when
  // the capture was taken.
  ShardDigest digest() const;
  // The same digest recomputed from the captured records' bytes: O(keys)
  // (docs/storage.md has the figures), on the calling thread. For tests and
  // checks that the kept sums are right; digest() is what a node compares.
  ShardDigest scan_digest() const;
  // The records of `buckets` (key, value, version, expiry: everything the
  // digest covers), with the capture's index and version floor, for
  // StorageEngine::replace_buckets() on another replica. A bucket export
  // (layout: src/storage/snapshot.hpp) cut into chunks of at most
  // max_chunk_bytes each, in order; a record may span chunks. There is at
  // least one chunk, even for empty buckets (the export then carries the
  // version floor and says the buckets are empty). `buckets` may come in
  // any order; duplicates count once. kInvalidArgument for a bucket number
  // >= kDigestBuckets or max_chunk_bytes 0. Cost: O(keys) to pick the
  // records, and memory for the records exported (each bucket holds about
  // 1/256 of the keys): export a group of buckets at a time to bound it.
  Result<std::vector<std::string>> export_buckets(const std::vector<std::uint32_t>& buckets,
                                                  std::size_t max_chunk_bytes) const;

 private:
  friend class storage::EngineCore;
  explicit StateCapture(std::shared_ptr<const storage::CapturedState> captured);
  std::shared_ptr<const storage::CapturedState> captured_;
};

class StorageEngine final : public StateMachine {
 public:
  // Opens (creating if needed) the engine in options.dir: loads the newest
  // snapshot, then (standalone) replays the WAL after it. kInvalidArgument
  // for bad options; kCorruption naming file and offset for damaged files
  // (a torn WAL tail is truncated and logged instead); kIOError.
  static Result<std::unique_ptr<StorageEngine>> open(StorageOptions options);
  ~StorageEngine() override;
  StorageEngine(const StorageEngine&) = delete;
  StorageEngine& operator=(const StorageEngine&) = delete;

  // --- reads (both modes) ---
  // The key's value if it exists and has not expired at `now`; kNotFound
  // otherwise; kInvalidArgument for an empty or over-long key.
  Result<ReadResult> get(std::string_view key, WallTime now) const;
  // The same at the options' clock's wall time.
  Result<ReadResult> get(std::string_view key) const;
  // get() into `out`, reusing its value buffer (no allocation when it fits).
  Status get_into(std::string_view key, WallTime now, ReadResult& out) const;
  // Reads keys[i] into out[i] for every i, reusing out[i]'s buffer; a key
  // that is absent or expired at `now` leaves out[i].version == 0 (versions
  // of stored keys start at 1). Faster per key than get(): the lookups of a
  // group of keys overlap their memory accesses under one lock acquisition.
  // kInvalidArgument (nothing read) if a key breaks the key limits or the
  // spans differ in size.
  Status get_many(std::span<const std::string_view> keys, WallTime now,
                  std::span<ReadResult> out) const;
  // Up to max_keys keys expired at `now`, earliest first, without removing them.
  std::vector<DueKey> find_due_keys(WallTime now, std::size_t max_keys) const;
  // kInvalidArgument if `command` breaks a limit (what apply would refuse),
  // so a proposer can refuse before logging.
  Status validate_command(const KvCommand& command) const;

  // --- writes (standalone mode; each stamped with the clock's wall time) ---
  WriteResult set(std::string_view key, std::string_view value, const WriteOptions& options = {});
  WriteResult compare_and_set(std::string_view key, std::string_view value,
                              std::uint64_t expected_version,
                              std::optional<WallTime> expiry = std::nullopt);
  // OK with deleted = false when the key is absent or expired.
  WriteResult remove(std::string_view key);
  WriteResult remove_if_version(std::string_view key, std::uint64_t expected_version);
  // Removes up to max_keys (at most max_expire_batch_keys) keys expired at
  // `now` through one logged expire command; expired_keys lists them.
  WriteResult expire_due(WallTime now, std::size_t max_keys);
  // Asynchronous write: `done` is called exactly once, after the write is
  // durable and applied, or with the reason it was refused.
  void submit(const WriteRequest& request, WriteCallback done);
  // Several asynchronous writes, all queued before any is committed (so one
  // thread can have many in flight); done(i, result) is called exactly once
  // for each requests[i], in any order.
  void submit_all(std::span<const WriteRequest> requests,
                  const std::function<void(std::size_t index, WriteResult)>& done);

  // Writes a snapshot of the state (temp file, fsync, rename, directory
  // fsync), then (standalone) deletes the WAL segments it covers. Writes go
  // on meanwhile, except for the short WAL rotation. A failure puts the
  // engine in the failed state. kNotSupported without a directory.
  Status snapshot();
  // kNone: hands the buffered WAL bytes to the OS (no fsync).
  Status flush();

  StorageStats stats() const;
  bool failed() const;

  // --- StateMachine (replicated mode) ---
  // Applies the command at `index` (> last_applied_index(); an empty command
  // is a no-op that only advances the index) and answers encode_write_result()
  // bytes. A malformed command answers kInvalidArgument in the response.
  Result<std::string> apply(LogIndex index, std::string_view command) override;
  LogIndex last_applied_index() const override;
  // Both modes: a point-in-time stream in the snapshot format, consistent
  // while writes go on.
  Result<std::unique_ptr<SnapshotSource>> open_snapshot() override;
  // Replicated mode: the state is replaced (and persisted, with a directory)
  // when the sink's finish() returns OK. With a directory the sink hands each
  // chunk to its writer thread (restore_writer_thread), so write_chunk()
  // costs the caller the parse and a copy; it waits only while the writer is
  // restore_max_queued_bytes behind. An I/O error of the file is answered by
  // the next write_chunk() or by finish() (kIOError); a failed sync also
  // puts the engine in the failed state. Dropping the sink stops and joins
  // its writer and removes the file.
  Result<std::unique_ptr<SnapshotSink>> begin_restore(LogIndex index) override;

  // --- digests and bucket repair (shard_digest.hpp) ---
  // Both modes, any thread: the state as of last_applied_index() at the
  // time. O(1) (microseconds) under the shared state lock. The pointers of
  // the hash table's slots are copied out (no record is touched: 8-16 ms
  // per million keys) by the capture's first reader (digest,
  // export_buckets, a snapshot stream's first chunk), in steps of 16,384
  // slots under the shared state lock, so that writes applied meanwhile
  // wait for one step at most: read a large capture off the thread that
  // applies writes. Always OK today.
  Result<std::shared_ptr<const StateCapture>> capture() const;
  // Both modes, any thread: the digest (shard_digest.hpp) of the state as
  // of last_applied_index() at the time, without a capture. O(1) under the
  // shared state lock: the engine keeps the digest's sums up to date as
  // records come and go (docs/storage.md, "Digests and bucket repair").
  ShardDigest digest() const;
  // Replicated mode: the records that a capture (or a snapshot stream) kept
  // alive, because they were overwritten or removed while it lived, are
  // handed back to the engine when the last capture needing them is gone,
  // and freed on the thread that applies: one with every apply(), and up to
  // `max` here. Why: that thread allocated them, and a few hundred thousand
  // frees from the thread that dropped the capture took the allocator's
  // lock against its own allocations (the writes stalled for 0.2-0.4 s at
  // the end of a shard's snapshot stream). A host calls this on the apply
  // thread when it is idle (a node: every tick), so that an engine no
  // longer written to frees them too. Returns how many still wait. Takes
  // the state lock exclusively, like apply(). Standalone mode: none ever
  // waits (the thread dropping a capture frees them).
  std::size_t free_released_records(std::size_t max);
  // For a host dropping this engine (a node whose shard migrated away):
  // moves every record out and leaves the state empty, so that the caller
  // can free them a slice at a time on the thread that allocated them (the
  // node's loop). A million frees from another thread contend with that
  // thread's own allocations for the allocator's lock: the source's client
  // writes stalled for 0.2-0.5 s after a move. nullptr while a capture or a
  // snapshot stream still shares the records (freeing is then theirs).
  // Nothing is read or applied afterwards; any thread.
  std::unique_ptr<StateRemains> take_state();
  // Replicated mode, on the apply thread, between applies: replaces every
  // key of `buckets` with exactly the records in `chunks` (from
  // export_buckets() of a capture taken at this engine's current
  // last_applied_index() on another replica), and the version floor with the
  // exporter's. last_applied_index() does not change. Afterwards a new
  // capture's digest has the exporter's sums for those buckets and its
  // version floor; with the same state elsewhere, the same root.
  // On any error the state is unchanged:
  //   kInvalidArgument: a bucket number >= kDigestBuckets; a malformed or
  //     damaged chunk, or chunks missing or out of order (the message names
  //     the chunk and the offset); an export of another bucket set than
  //     `buckets`, or holding a key outside them; an export taken at another
  //     index; a record over this engine's key or value limit.
  //   kNotSupported in standalone mode; kFailed if the engine is failed.
  // Not persisted by itself: a reopen comes back to the newest snapshot file
  // and the log after it. Call snapshot() after a repair to keep it.
  // Cost: O(keys) to find the buckets' current records (no lock that
  // blocks readers), then the exclusive state lock for O(records replaced).
  Status replace_buckets(const std::vector<std::uint32_t>& buckets,
                         const std::vector<std::string>& chunks);

 private:
  explicit StorageEngine(std::unique_ptr<storage::EngineCore> core);
  std::unique_ptr<storage::EngineCore> core_;
};

}  // namespace nodenomad
