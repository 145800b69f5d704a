#include "raft/raft_log.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace nodenomad {

RaftLog::RaftLog(LogStore& store, LogIndex committed, LogIndex applied,
                 std::uint64_t cache_bytes)
    : store_(store),
      unstable_offset_(store.last_index().next()),
      cache_limit_(cache_bytes),
      cache_offset_(unstable_offset_),
      committed_(committed),
      applied_(applied) {}

LogIndex RaftLog::first_index() const {
  if (unstable_snapshot_) return unstable_snapshot_->index.next();
  return store_.first_index();
}

LogIndex RaftLog::last_index() const {
  if (!unstable_.empty()) return unstable_last();
  if (unstable_snapshot_) return unstable_snapshot_->index;
  return unstable_offset_.prev();
}

Term RaftLog::last_term() const {
  const Result<Term> t = term(last_index());
  NN_ASSERT(t.is_ok(), "the last entry's term must be readable: ", t.status().to_string());
  return *t;
}

Result<Term> RaftLog::term(LogIndex index) const {
  if (!unstable_.empty() && index >= unstable_offset_ && index <= unstable_last()) {
    return unstable_[static_cast<std::size_t>(index - unstable_offset_)].term;
  }
  if (index > last_index() || index < snapshot_index()) {
    return Status::not_found(fmt::format("term of index {}: outside [{}, {}]", index.value(),
                                         snapshot_index().value(), last_index().value()));
  }
  if (unstable_snapshot_) {
    // Everything the store holds below the received snapshot is replaced by it.
    NN_ASSERT(index == unstable_snapshot_->index, "index ", index, " covered by the snapshot");
    return unstable_snapshot_->term;
  }
  return store_.term_at(index);
}

Term RaftLog::term_or_zero(LogIndex index) const {
  Result<Term> t = term(index);
  return t.is_ok() ? *t : Term(0);
}

bool RaftLog::match_term(LogIndex index, Term term) const {
  const Result<Term> t = this->term(index);
  return t.is_ok() && *t == term;
}

bool RaftLog::is_up_to_date(LogIndex last, Term term) const {
  const Term our_term = last_term();
  return term > our_term || (term == our_term && last >= last_index());
}

std::optional<LogIndex> RaftLog::maybe_append(LogIndex prev_index, Term prev_term,
                                              LogIndex leader_commit,
                                              std::span<const Entry> entries) {
  if (!match_term(prev_index, prev_term)) return std::nullopt;
  const LogIndex last_new = prev_index + entries.size();
  const LogIndex conflict = find_conflict(entries);
  if (conflict != LogIndex(0)) {
    NN_ASSERT(conflict > committed_, "entry ", conflict, " conflicts with the committed prefix (commit ",
              committed_, ")");
    truncate_and_append(entries.subspan(static_cast<std::size_t>(conflict - (prev_index + 1))));
  }
  commit_to(std::min(leader_commit, last_new));
  return last_new;
}

void RaftLog::append(std::span<const Entry> entries) {
  if (entries.empty()) return;
  NN_ASSERT(entries.front().index == last_index().next(), "leader append at ",
            entries.front().index, " after last index ", last_index());
  truncate_and_append(entries);
}

LogIndex RaftLog::find_conflict(std::span<const Entry> entries) const {
  for (const Entry& e : entries) {
    if (!match_term(e.index, e.term)) return e.index;
  }
  return LogIndex(0);
}

void RaftLog::truncate_and_append(std::span<const Entry> entries) {
  const LogIndex from = entries.front().index;
  NN_ASSERT(from > snapshot_index() && from <= last_index().next(), "append at ", from,
            " outside [", first_index(), ", ", last_index().next(), "]");
  if (from == unstable_offset_ + unstable_.size()) {
    // The common case: straight after the unstable tail (or the store).
  } else if (from <= unstable_offset_) {
    // The conflict lies in the durable part: what follows it is replaced.
    unstable_.clear();
    unstable_offset_ = from;
    truncate_cache(from);
  } else {
    unstable_.resize(static_cast<std::size_t>(from - unstable_offset_));
  }
  unstable_.insert(unstable_.end(), entries.begin(), entries.end());
  while (!conf_entries_.empty() && conf_entries_.back() >= from) conf_entries_.pop_back();
  track_conf_entries(entries);
}

void RaftLog::track_conf_entries(std::span<const Entry> entries) {
  for (const Entry& e : entries) {
    if (e.type == EntryType::kConfChange) conf_entries_.push_back(e.index);
  }
}

std::optional<LogIndex> RaftLog::next_conf_entry(LogIndex index) const {
  if (conf_entries_.empty() || conf_entries_.front() > index) return std::nullopt;
  return conf_entries_.front();
}

std::pair<LogIndex, Term> RaftLog::find_conflict_by_term(LogIndex index, Term term) const {
  LogIndex i = std::min(index, last_index());
  // Each step moves one index down; the loop ends at the snapshot index.
  for (;;) {
    const Result<Term> t = this->term(i);
    if (!t.is_ok()) return {i, Term(0)};
    if (*t <= term || i <= snapshot_index()) return {i, *t};
    i = i.prev();
  }
}

bool RaftLog::maybe_commit(LogIndex index, Term term) {
  if (index <= committed_ || term_or_zero(index) != term) return false;
  commit_to(index);
  return true;
}

void RaftLog::commit_to(LogIndex index) {
  if (index <= committed_) return;
  NN_ASSERT(index <= last_index(), "commit ", index, " past the last index ", last_index());
  committed_ = index;
}

Result<std::vector<Entry>> RaftLog::entries(LogIndex lo, LogIndex hi,
                                            std::uint64_t max_bytes) const {
  if (lo < first_index()) {
    return Status::not_found(fmt::format("entries from {}: compacted (first index {})",
                                         lo.value(), first_index().value()));
  }
  NN_ASSERT(lo <= hi && hi <= last_index().next(), "entries [", lo, ", ", hi, ") past ",
            last_index());
  std::vector<Entry> out;
  if (lo == hi) return out;
  std::uint64_t bytes = 0;
  if (lo < cache_offset_) {
    const LogIndex store_hi = std::min(hi, cache_offset_);
    NN_ASSIGN_OR_RETURN(out, store_.entries(lo, store_hi, max_bytes));
    if (out.size() < store_hi - lo) return out;  // the byte limit was reached
    for (const Entry& e : out) bytes += e.data.size();
  }
  // The cache and the unstable entries are one run in memory.
  for (LogIndex i = std::max(lo, cache_offset_); i < hi; ++i) {
    const Entry& e = i < unstable_offset_
                         ? cache_[static_cast<std::size_t>(i - cache_offset_)]
                         : unstable_[static_cast<std::size_t>(i - unstable_offset_)];
    if (!out.empty() && bytes + e.data.size() > max_bytes) break;
    bytes += e.data.size();
    out.push_back(e);
  }
  return out;
}

void RaftLog::stable_to(LogIndex index, Term term) {
  if (unstable_.empty() || index < unstable_offset_ || index > unstable_last()) return;
  if (unstable_[static_cast<std::size_t>(index - unstable_offset_)].term != term) return;
  const auto n = static_cast<std::size_t>(index - unstable_offset_) + 1;
  const auto end = unstable_.begin() + static_cast<std::ptrdiff_t>(n);
  if (cache_limit_ > 0) {
    for (auto it = unstable_.begin(); it != end; ++it) {
      cache_bytes_ += it->data.size();
      cache_.push_back(std::move(*it));
    }
  }
  unstable_.erase(unstable_.begin(), end);
  unstable_offset_ = index.next();
  if (cache_.empty()) cache_offset_ = unstable_offset_;
  evict_cache();
}

void RaftLog::truncate_cache(LogIndex index) {
  while (!cache_.empty() && cache_offset_ + cache_.size() > index) {
    cache_bytes_ -= cache_.back().data.size();
    cache_.pop_back();
  }
  if (cache_.empty()) cache_offset_ = index;
}

void RaftLog::release_cache_to(LogIndex index) {
  while (!cache_.empty() && cache_offset_ <= index) pop_cache_front();
}

void RaftLog::evict_cache() {
  while (!cache_.empty() && cache_bytes_ > cache_limit_) pop_cache_front();
}

void RaftLog::pop_cache_front() {
  cache_bytes_ -= cache_.front().data.size();
  cache_.pop_front();
  cache_offset_ = cache_.empty() ? unstable_offset_ : cache_offset_.next();
}

void RaftLog::stable_snapshot_to(LogIndex index) {
  if (unstable_snapshot_ && unstable_snapshot_->index == index) unstable_snapshot_.reset();
}

void RaftLog::restore(const SnapshotMeta& meta) {
  NN_ASSERT(meta.index > committed_, "restoring snapshot ", meta.index, " at or below commit ",
            committed_);
  unstable_snapshot_ = meta;
  unstable_.clear();
  unstable_offset_ = meta.index.next();
  cache_.clear();
  cache_bytes_ = 0;
  cache_offset_ = unstable_offset_;
  conf_entries_.clear();
  committed_ = meta.index;
  applied_ = std::max(applied_, meta.index);
}

std::vector<Entry> RaftLog::next_committed_entries(std::uint64_t max_bytes) const {
  if (!has_next_committed()) return {};
  const LogIndex lo = applied_.next();
  NN_ASSERT(lo >= first_index(), "committed entry ", lo, " is compacted (first index ",
            first_index(), ")");
  Result<std::vector<Entry>> out = entries(lo, committed_.next(), max_bytes);
  NN_ASSERT(out.is_ok(), "committed entries must be readable: ", out.status().to_string());
  return std::move(out).value();
}

void RaftLog::applied_to(LogIndex index) {
  NN_ASSERT(index <= committed_, "applied ", index, " past commit ", committed_);
  applied_ = std::max(applied_, index);
}

}  // namespace nodenomad
