// StorageOptions: how a StorageEngine is opened. Plain values; copy freely.
//
// Every queue, batch and buffer the engine keeps has its bound here, named
// with its unit. validate_storage_options() checks them together (for
// example, that one maximal write fits in a batch and in a WAL record) and
// StorageEngine::open() refuses bad options with kInvalidArgument naming the
// option.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "nodenomad/status.hpp"

namespace nodenomad {

class Clock;
class FileSystem;

enum class StorageMode : std::uint8_t {
  // The engine logs every write in its own WAL and serves the write API
  // (set, remove, submit, expire_due). StateMachine::apply is refused.
  kStandalone,
  // A Raft group's state machine: the Raft log is the WAL (no double write);
  // changes arrive only through StateMachine::apply / begin_restore, and the
  // write API answers kNotSupported. Snapshots persist last_applied_index().
  kReplicated,
};

enum class SyncPolicy : std::uint8_t {
  kEveryWrite,   // one fsync per write: the simplest durability, the slowest
  kGroupCommit,  // one fsync per batch of concurrent writes; each caller is
                 // answered once its own record is durable
  kNone,         // no fsync, and records are buffered in the process up to
                 // wal_buffer_bytes: a crash (even of the process alone) may
                 // lose the most recent acknowledged writes, never reorder them
};

struct StorageOptions {
  StorageMode mode = StorageMode::kStandalone;
  // Where snapshots live (DATA_DIR). Empty: the engine keeps nothing on disk
  // (no WAL, no snapshot file), for tests and in-memory benchmarks.
  std::string dir;
  // Where WAL segments live (WAL_DIR); empty means `dir`. Standalone only.
  std::string wal_dir;
  // Not owned; must outlive the engine. Null: PosixFileSystem::instance().
  FileSystem* file_system = nullptr;
  // Not owned; must outlive the engine. Null: SystemClock::instance(). Read
  // only by the conveniences that stamp a command or a read with "now";
  // never by apply.
  Clock* clock = nullptr;

  SyncPolicy sync_policy = SyncPolicy::kGroupCommit;

  // Limits on what a write may carry (the HTTP API's 400 / 413).
  std::size_t max_key_bytes = 1024;        // keys are 1 .. max_key_bytes bytes
  std::size_t max_value_bytes = 1u << 20;  // 1 MiB

  // MAX_WAL_SIZE: once the WAL holds this many bytes, the next write that
  // returns takes a snapshot and the old segments are deleted.
  std::uint64_t max_wal_bytes = 1ull << 30;

  // One commit round (one WAL append, one fsync) carries at most this much.
  std::size_t max_batch_bytes = 4u << 20;
  std::size_t max_batch_writes = 4096;
  // Writes accepted but not yet committed; beyond either bound a write is
  // refused with kBusy (not logged, not applied).
  std::size_t max_pending_bytes = 64u << 20;
  std::size_t max_pending_writes = 65536;
  // kNone only: bytes buffered in the process before one write to the OS.
  std::size_t wal_buffer_bytes = 256u << 10;

  // Snapshot encoding: keys per snapshot record are packed up to this size.
  std::size_t snapshot_record_bytes = 64u << 10;
  // The most keys one expire command (expire_due) removes.
  std::size_t max_expire_batch_keys = 1024;

  // Restore (replicated mode, with a directory): a sink from begin_restore()
  // hands each chunk to a writer thread of its own (started by its first
  // chunk, joined by finish() or its destruction), which appends it to the
  // restore file and syncs the file every restore_sync_every_bytes, so the
  // thread that feeds the sink (a node's event loop) only parses and copies.
  // false: the sink writes and syncs on the calling thread, at the same
  // points - for a deterministic simulator, whose FileSystem must see every
  // call from the one thread that runs it, in a reproducible order.
  bool restore_writer_thread = true;
  // Bytes handed to the writer thread but not yet written; beyond this,
  // write_chunk() waits for the writer (one chunk larger than this passes
  // alone).
  std::size_t restore_max_queued_bytes = 64u << 20;
  // Sync the restore file every time this many bytes were written since the
  // last sync (0: only once, in finish()).
  std::uint64_t restore_sync_every_bytes = 64u << 20;
  // Start the restore file's writeback (WritableFile::start_writeback) every
  // time this many bytes were written since, so that it goes to the disk
  // steadily instead of in bursts at each sync, which other files' fsyncs
  // on the same disk (the Raft logs: every client write) would wait behind.
  // 0: never.
  std::uint64_t restore_writeback_every_bytes = 1u << 20;
};

// kInvalidArgument naming the first option that is out of range, or OK.
Status validate_storage_options(const StorageOptions& options);

}  // namespace nodenomad
