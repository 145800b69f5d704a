// StateMachine: what a Raft group replicates into. The StorageEngine is the
// shipped one; a host can bring its own.
//
// Contract:
//   - apply() is called with every committed normal entry, in index order,
//     exactly once per index after the last snapshot or restore. It must be
//     deterministic: the same commands give the same state and responses on
//     every replica, so it never reads a clock or a random source.
//   - A command that is well formed but refused (a lost compare-and-set, a
//     value over the limit) is not an apply error: it answers a response that
//     says so. apply() returns an error Status only when the replica can no
//     longer go on (an I/O failure); the node then stops.
//   - last_applied_index() survives restarts through snapshots: after a
//     restore or reopen it is the index the state reflects.
//
// Thread safety: the runtime calls apply(), last_applied_index(),
// open_snapshot() and begin_restore() from one thread. A SnapshotSource may
// be read from another thread while apply() goes on (migration streams from
// it while the shard keeps serving writes).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "nodenomad/status.hpp"
#include "nodenomad/types.hpp"

namespace nodenomad {

// A point-in-time serialization of the state, read in chunks with bounded
// memory. The bytes are opaque to Raft and to the transport.
class SnapshotSource {
 public:
  virtual ~SnapshotSource() = default;
  // The applied index the snapshot reflects.
  virtual LogIndex index() const = 0;
  // The next chunk of at most max_bytes bytes (at least one byte unless the
  // stream is done); an empty string once the stream is done.
  virtual Result<std::string> next_chunk(std::size_t max_bytes) = 0;
  // A source that prepares its chunks ahead on another thread may have none
  // ready yet: the engine then stops reading until the host calls
  // RaftEngine::snapshot_chunks_ready(). The default is always ready.
  virtual bool chunk_ready() const { return true; }
};

// Receives a snapshot's bytes in order; the state is replaced only when
// finish() returns OK. Dropping a sink without finish() leaves the old state.
class SnapshotSink {
 public:
  virtual ~SnapshotSink() = default;
  virtual Status write_chunk(std::string_view chunk) = 0;
  virtual Status finish() = 0;
};

class StateMachine {
 public:
  virtual ~StateMachine() = default;
  // Applies the command committed at `index`; returns the response bytes.
  virtual Result<std::string> apply(LogIndex index, std::string_view command) = 0;
  virtual LogIndex last_applied_index() const = 0;
  // A snapshot of the state as of last_applied_index().
  virtual Result<std::unique_ptr<SnapshotSource>> open_snapshot() = 0;
  // Starts replacing the state with a snapshot that reflects `index`.
  virtual Result<std::unique_ptr<SnapshotSink>> begin_restore(LogIndex index) = 0;
};

}  // namespace nodenomad
