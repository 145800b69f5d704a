// MemoryLogStore: the whole LogStore contract (nodenomad/log_store.hpp) kept
// in memory, for tests, the Raft simulator and hosts that need no durability.
//
// Thread safety: every method may be called from any thread; one mutex guards
// the state and no method blocks on anything but that mutex.
//
// Ownership: the store owns copies of everything given to it; nothing
// survives the object.
//
// Durability: sync() is trivially durable: it answers last_index() and never
// fails, so the store is never in the failed state.
//
// Errors: exactly the argument checks FileLogStore makes, with the same codes
// and messages (kInvalidArgument for a malformed mutation, kNotFound for a
// read outside the readable range; both name the index and the range), so a
// test written against one holds for the other. Beyond the interface's
// rules, append() also refuses a batch whose terms decrease (a Raft log's
// terms never do), which catches a confused caller early.
#pragma once

#include <deque>
#include <mutex>

#include "nodenomad/log_store.hpp"

namespace nodenomad {

class MemoryLogStore final : public LogStore {
 public:
  MemoryLogStore() = default;
  MemoryLogStore(const MemoryLogStore&) = delete;
  MemoryLogStore& operator=(const MemoryLogStore&) = delete;

  LogIndex first_index() const override;
  LogIndex last_index() const override;
  Result<Term> term_at(LogIndex index) const override;
  Result<std::vector<Entry>> entries(LogIndex lo, LogIndex hi,
                                     std::uint64_t max_bytes) const override;
  HardState hard_state() const override;
  SnapshotMeta snapshot_meta() const override;

  Status append(std::span<const Entry> entries) override;
  Status truncate_suffix(LogIndex from) override;
  Status set_hard_state(const HardState& state) override;
  Status compact(const SnapshotMeta& meta) override;
  Status install_snapshot(const SnapshotMeta& meta) override;
  Result<LogIndex> sync() override;

 private:
  LogIndex first_index_locked() const { return snapshot_.index.next(); }
  LogIndex last_index_locked() const { return snapshot_.index + entries_.size(); }
  // Term of `index` in [snapshot index, last index]; precondition: in range.
  Term term_in_range_locked(LogIndex index) const;

  mutable std::mutex mu_;
  SnapshotMeta snapshot_;
  HardState hard_state_;
  std::deque<Entry> entries_;  // entries_[i] has index snapshot_.index + 1 + i
};

}  // namespace nodenomad
