// LogStore: the durable Raft log of one Raft group, its hard state (term,
// vote, commit) and its snapshot metadata. Hosts may bring their own; the
// library ships MemoryLogStore (nodenomad/memory_log_store.hpp) and
// FileLogStore (nodenomad/file_log_store.hpp).
//
// The store knows Raft's data, not Raft's rules: it keeps what it is told,
// in order, and says how much of it is durable.
//
// Index space: entries first_index() .. last_index() are readable. Before the
// first entry sits the snapshot (snapshot_meta().index / .term), whose term
// is still answered by term_at(). An empty log has
// first_index() == snapshot index + 1 and last_index() == snapshot index.
//
// Durability: append(), set_hard_state(), compact() and install_snapshot()
// change what reads see at once, but are durable only once a later sync()
// returns. sync() answers the index through which the log is durable; the
// hard state and snapshot metadata given before the sync() are durable too.
// Raft relies on this: the term and vote must be durable before any message
// that depends on them leaves the node.
//
// Errors: an I/O error from sync() is final: the store is failed and every
// later mutation answers kFailed (a failed fsync is never retried silently).
//
// Thread safety: every method may be called from any thread. In the node
// runtime, one disk thread appends and syncs while the Raft thread reads;
// appends that arrive while a sync is in flight are made durable by the next
// one (group commit).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "nodenomad/shared_bytes.hpp"
#include "nodenomad/status.hpp"
#include "nodenomad/types.hpp"

namespace nodenomad {

enum class EntryType : std::uint8_t {
  kNormal = 0,      // a state-machine command (empty data: the leader's no-op)
  kConfChange = 1,  // a membership change, interpreted by Raft
};

struct Entry {
  Term term;
  LogIndex index;
  EntryType type = EntryType::kNormal;
  SharedBytes data;  // copies share one buffer (shared_bytes.hpp)

  bool operator==(const Entry&) const = default;
};

// Group membership. During a joint change both voters and voters_outgoing
// must agree (joint consensus); learners receive the log but do not vote.
struct ConfState {
  std::vector<NodeId> voters;
  std::vector<NodeId> learners;
  std::vector<NodeId> voters_outgoing;  // non-empty only in a joint config
  std::vector<NodeId> learners_next;    // learners to be after leaving joint
  bool auto_leave = false;

  bool operator==(const ConfState&) const = default;
};

struct HardState {
  Term term;
  NodeId vote;  // empty: voted for nobody in `term`
  LogIndex commit;

  bool operator==(const HardState&) const = default;
};

struct SnapshotMeta {
  LogIndex index;  // last entry covered by the snapshot; 0 = no snapshot
  Term term;       // term of that entry
  ConfState conf_state;

  bool operator==(const SnapshotMeta&) const = default;
};

class LogStore {
 public:
  virtual ~LogStore() = default;

  // --- reads ---
  virtual LogIndex first_index() const = 0;
  virtual LogIndex last_index() const = 0;
  // Term of the entry at `index`; the snapshot's term at its index.
  // kNotFound names the readable range when `index` is outside it.
  virtual Result<Term> term_at(LogIndex index) const = 0;
  // Entries [lo, hi), stopping early once `max_bytes` of data is reached
  // but always returning at least one entry when lo < hi. kNotFound when
  // lo < first_index() (compacted) or hi > last_index() + 1.
  virtual Result<std::vector<Entry>> entries(LogIndex lo, LogIndex hi,
                                             std::uint64_t max_bytes) const = 0;
  virtual HardState hard_state() const = 0;
  virtual SnapshotMeta snapshot_meta() const = 0;

  // --- mutations (visible at once, durable after sync) ---
  // Appends contiguous entries. entries[0].index must lie in
  // [first_index(), last_index() + 1]; an existing suffix from that index on
  // is replaced (a follower's log conflict). kInvalidArgument otherwise.
  virtual Status append(std::span<const Entry> entries) = 0;
  // Drops the entries at `from` and after; from in [first_index(), last_index() + 1].
  virtual Status truncate_suffix(LogIndex from) = 0;
  virtual Status set_hard_state(const HardState& state) = 0;
  // Records a snapshot taken by this node's state machine and drops the
  // entries up to meta.index, which must lie in [first_index() - 1, last_index()].
  virtual Status compact(const SnapshotMeta& meta) = 0;
  // Replaces the whole log with a snapshot received from the leader:
  // afterwards first_index() == meta.index + 1 == last_index() + 1.
  virtual Status install_snapshot(const SnapshotMeta& meta) = 0;

  // Makes every mutation so far durable; returns the durable last index.
  virtual Result<LogIndex> sync() = 0;

  // --- hints ---
  // The entries before `below` are not expected to be read soon: this node
  // applied them and, if it leads, every peer holds them (a restart or a
  // peer that falls behind may still read them). A store may drop them
  // from memory caches; it must still answer entries() for them. Called
  // on the thread that mutates the store, with `below` never decreasing
  // (except after a restart). The default ignores it.
  virtual void release_cache(LogIndex below) { (void)below; }
};

// Forwards every call to an owned LogStore, so that a decorator (a test
// double that counts or watches calls) overrides only what it changes
// (LevelDB's EnvWrapper; FileSystemWrapper in file_system.hpp).
class LogStoreWrapper : public LogStore {
 public:
  explicit LogStoreWrapper(std::unique_ptr<LogStore> inner) : inner_(std::move(inner)) {}

  LogIndex first_index() const override { return inner_->first_index(); }
  LogIndex last_index() const override { return inner_->last_index(); }
  Result<Term> term_at(LogIndex index) const override { return inner_->term_at(index); }
  Result<std::vector<Entry>> entries(LogIndex lo, LogIndex hi,
                                     std::uint64_t max_bytes) const override {
    return inner_->entries(lo, hi, max_bytes);
  }
  HardState hard_state() const override { return inner_->hard_state(); }
  SnapshotMeta snapshot_meta() const override { return inner_->snapshot_meta(); }
  Status append(std::span<const Entry> entries) override { return inner_->append(entries); }
  Status truncate_suffix(LogIndex from) override { return inner_->truncate_suffix(from); }
  Status set_hard_state(const HardState& state) override { return inner_->set_hard_state(state); }
  Status compact(const SnapshotMeta& meta) override { return inner_->compact(meta); }
  Status install_snapshot(const SnapshotMeta& meta) override {
    return inner_->install_snapshot(meta);
  }
  Result<LogIndex> sync() override { return inner_->sync(); }
  void release_cache(LogIndex below) override { inner_->release_cache(below); }

 private:
  std::unique_ptr<LogStore> inner_;
};

}  // namespace nodenomad
