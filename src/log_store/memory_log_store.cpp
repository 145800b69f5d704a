#include "nodenomad/memory_log_store.hpp"

#include "log_store/log_store_checks.hpp"

namespace nodenomad {

namespace checks = log_store_checks;

Term MemoryLogStore::term_in_range_locked(LogIndex index) const {
  NN_ASSERT(index >= snapshot_.index && index <= last_index_locked(), "term of index ", index,
            " outside [", snapshot_.index, ", ", last_index_locked(), "]");
  if (index == snapshot_.index) return snapshot_.term;
  return entries_[static_cast<std::size_t>(index - first_index_locked())].term;
}

LogIndex MemoryLogStore::first_index() const {
  std::lock_guard lock(mu_);
  return first_index_locked();
}

LogIndex MemoryLogStore::last_index() const {
  std::lock_guard lock(mu_);
  return last_index_locked();
}

Result<Term> MemoryLogStore::term_at(LogIndex index) const {
  std::lock_guard lock(mu_);
  if (index < snapshot_.index || index > last_index_locked()) {
    return checks::term_not_found(index, snapshot_.index, last_index_locked());
  }
  return term_in_range_locked(index);
}

Result<std::vector<Entry>> MemoryLogStore::entries(LogIndex lo, LogIndex hi,
                                                   std::uint64_t max_bytes) const {
  std::lock_guard lock(mu_);
  NN_RETURN_IF_ERROR(
      checks::check_entries_range(lo, hi, first_index_locked(), last_index_locked()));
  const auto offset = static_cast<std::size_t>(lo - first_index_locked());
  const std::uint64_t n = checks::count_within_bytes(hi - lo, max_bytes, [&](std::uint64_t i) {
    return static_cast<std::uint64_t>(entries_[offset + static_cast<std::size_t>(i)].data.size());
  });
  std::vector<Entry> out(entries_.begin() + static_cast<std::ptrdiff_t>(offset),
                         entries_.begin() + static_cast<std::ptrdiff_t>(offset + n));
  return out;
}

HardState MemoryLogStore::hard_state() const {
  std::lock_guard lock(mu_);
  return hard_state_;
}

SnapshotMeta MemoryLogStore::snapshot_meta() const {
  std::lock_guard lock(mu_);
  return snapshot_;
}

Status MemoryLogStore::append(std::span<const Entry> entries) {
  if (entries.empty()) return Status::ok();
  std::lock_guard lock(mu_);
  NN_RETURN_IF_ERROR(
      checks::check_append_indexes(entries, first_index_locked(), last_index_locked()));
  const LogIndex start = entries.front().index;
  NN_RETURN_IF_ERROR(checks::check_append_terms(entries, term_in_range_locked(start.prev())));
  entries_.resize(static_cast<std::size_t>(start - first_index_locked()));
  entries_.insert(entries_.end(), entries.begin(), entries.end());
  return Status::ok();
}

Status MemoryLogStore::truncate_suffix(LogIndex from) {
  std::lock_guard lock(mu_);
  NN_RETURN_IF_ERROR(checks::check_truncate(from, first_index_locked(), last_index_locked()));
  entries_.resize(static_cast<std::size_t>(from - first_index_locked()));
  return Status::ok();
}

Status MemoryLogStore::set_hard_state(const HardState& state) {
  std::lock_guard lock(mu_);
  hard_state_ = state;
  return Status::ok();
}

Status MemoryLogStore::compact(const SnapshotMeta& meta) {
  std::lock_guard lock(mu_);
  NN_RETURN_IF_ERROR(checks::check_compact_index(meta, first_index_locked(), last_index_locked()));
  NN_RETURN_IF_ERROR(checks::check_compact_term(meta, term_in_range_locked(meta.index)));
  entries_.erase(entries_.begin(),
                 entries_.begin() + static_cast<std::ptrdiff_t>(meta.index - snapshot_.index));
  snapshot_ = meta;
  return Status::ok();
}

Status MemoryLogStore::install_snapshot(const SnapshotMeta& meta) {
  std::lock_guard lock(mu_);
  NN_RETURN_IF_ERROR(checks::check_install(meta, snapshot_));
  entries_.clear();
  snapshot_ = meta;
  return Status::ok();
}

Result<LogIndex> MemoryLogStore::sync() {
  std::lock_guard lock(mu_);
  return last_index_locked();
}

}  // namespace nodenomad
