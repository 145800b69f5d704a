// RaftLog: the engine's view of its log: the durable LogStore overlaid by the
// entries (and a received snapshot) not yet handed to the host for
// persistence, plus the commit and applied indexes.
//
// Index space, low to high: [store's snapshot | store entries | unstable
// entries]. Entries at and after unstable_offset_ come from memory; a log
// conflict may move unstable_offset_ below the store's last index, and the
// store's stale suffix is replaced when the host appends the next Ready's
// entries. A received snapshot replaces everything below it.
//
// The entry cache keeps the newest durable entries in memory, up to
// cache_limit_ bytes of payload, as TiKV's entry cache does: applying a
// committed entry and replicating it to a follower that keeps up then read
// no log file (with a file store, that read was 5% of a leader's loop).
// Entries leave it once applied and held by every follower, so an idle
// group keeps none. It always ends where the unstable entries begin:
// [cache_offset_, unstable_offset_).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "nodenomad/log_store.hpp"

namespace nodenomad {

class RaftLog {
 public:
  // committed and applied as recovered by the engine; committed >= applied
  // is not required (a state machine may be ahead after a crash mid-restore).
  // cache_bytes: payload bytes of durable entries kept in memory (0: none).
  RaftLog(LogStore& store, LogIndex committed, LogIndex applied, std::uint64_t cache_bytes = 0);

  LogIndex first_index() const;
  LogIndex last_index() const;
  Term last_term() const;
  // The snapshot index (first_index() - 1), whose term term() still knows.
  LogIndex snapshot_index() const { return first_index().prev(); }
  Result<Term> term(LogIndex index) const;
  // 0 when `index` is outside [snapshot_index(), last_index()].
  Term term_or_zero(LogIndex index) const;
  bool match_term(LogIndex index, Term term) const;
  bool is_up_to_date(LogIndex last, Term term) const;

  // The last index the host has reported durable (0 while a received
  // snapshot is not yet durable).
  LogIndex durable_last_index() const {
    return unstable_snapshot_ ? LogIndex(0) : unstable_offset_.prev();
  }

  LogIndex committed() const { return committed_; }
  LogIndex applied() const { return applied_; }

  // A follower's consistency check and append. Returns the index of the
  // last entry the message vouches for, or nullopt when (prev_index,
  // prev_term) does not match.
  std::optional<LogIndex> maybe_append(LogIndex prev_index, Term prev_term,
                                       LogIndex leader_commit, std::span<const Entry> entries);
  // The leader's own append; entries start at last_index() + 1.
  void append(std::span<const Entry> entries);
  // The first index at or below `index` whose term is at most `term`,
  // with that term (fast backtracking of a log conflict).
  std::pair<LogIndex, Term> find_conflict_by_term(LogIndex index, Term term) const;

  // Moves commit to `index` when its term is `term` (a leader commits only
  // entries of its own term by counting replicas).
  bool maybe_commit(LogIndex index, Term term);
  // Commit never moves backwards; index <= last_index().
  void commit_to(LogIndex index);

  Result<std::vector<Entry>> entries(LogIndex lo, LogIndex hi, std::uint64_t max_bytes) const;

  // --- the host's side ---
  bool has_unstable() const { return !unstable_.empty() || unstable_snapshot_.has_value(); }
  std::vector<Entry> unstable_entries() const { return {unstable_.begin(), unstable_.end()}; }
  const std::optional<SnapshotMeta>& unstable_snapshot() const { return unstable_snapshot_; }
  // The host made entries through (index, term) durable.
  void stable_to(LogIndex index, Term term);
  void stable_snapshot_to(LogIndex index);
  // Replaces the log with a snapshot received from the leader.
  void restore(const SnapshotMeta& meta);

  // Configuration-change entries in the log that have not taken effect yet,
  // oldest first; conflicts and snapshots drop them with their entries.
  void track_conf_entries(std::span<const Entry> entries);
  // The oldest tracked entry at or below `index`; nullopt if none.
  std::optional<LogIndex> next_conf_entry(LogIndex index) const;
  void pop_conf_entry() { conf_entries_.pop_front(); }

  bool has_next_committed() const { return applied_ < committed_; }
  // Committed entries after applied(), at most max_bytes of payload (at
  // least one entry).
  std::vector<Entry> next_committed_entries(std::uint64_t max_bytes) const;
  void applied_to(LogIndex index);

  // Drops the cached entries up to `index`: nobody will read them soon
  // (applied here, and held by every follower a leader tracks).
  void release_cache_to(LogIndex index);
  // The entry cache's first index and payload bytes (cache_first() ==
  // durable_last_index() + 1 when it is empty).
  LogIndex cache_first() const { return cache_offset_; }
  std::uint64_t cache_bytes() const { return cache_bytes_; }

 private:
  LogIndex unstable_last() const { return unstable_offset_ + unstable_.size() - 1; }
  // The first index whose term differs from ours (or is past our log); 0 if none.
  LogIndex find_conflict(std::span<const Entry> entries) const;
  void truncate_and_append(std::span<const Entry> entries);
  // Drops cached entries at and after `index` (a conflict replaced them).
  void truncate_cache(LogIndex index);
  void evict_cache();  // oldest first, down to cache_limit_
  void pop_cache_front();  // keeps cache_offset_ == unstable_offset_ once empty

  LogStore& store_;
  std::optional<SnapshotMeta> unstable_snapshot_;
  LogIndex unstable_offset_;    // index of unstable_.front()
  std::deque<Entry> unstable_;  // not yet handed to the host as durable
  std::uint64_t cache_limit_;
  LogIndex cache_offset_;     // index of cache_.front()
  std::deque<Entry> cache_;   // durable, [cache_offset_, unstable_offset_)
  std::uint64_t cache_bytes_ = 0;
  LogIndex committed_;
  LogIndex applied_;
  std::deque<LogIndex> conf_entries_;  // bounded by the log's length
};

}  // namespace nodenomad
