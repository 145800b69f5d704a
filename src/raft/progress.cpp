#include "raft/progress.hpp"

#include <algorithm>

namespace nodenomad {

void Inflights::add(LogIndex last, std::uint64_t bytes) {
  NN_ASSERT(items_.size() < max_messages_, "in-flight window overflow");
  NN_ASSERT(items_.empty() || items_.back().last < last, "in-flight indexes must grow");
  items_.push_back({last, bytes});
  bytes_ += bytes;
}

void Inflights::free_le(LogIndex index) {
  while (!items_.empty() && items_.front().last <= index) {
    bytes_ -= items_.front().bytes;
    items_.pop_front();
  }
}

void Inflights::free_first_one() {
  if (items_.empty()) return;
  bytes_ -= items_.front().bytes;
  items_.pop_front();
}

void Inflights::reset() {
  items_.clear();
  bytes_ = 0;
}

void Progress::become_probe() {
  // After a snapshot the follower holds at least the snapshot's index.
  if (state_ == ProgressState::kSnapshot) {
    next_ = std::max(match_.next(), pending_snapshot_.next());
  } else {
    next_ = match_.next();
  }
  state_ = ProgressState::kProbe;
  probe_sent_ = false;
  pending_snapshot_ = LogIndex(0);
  inflights_.reset();
}

void Progress::become_replicate() {
  state_ = ProgressState::kReplicate;
  next_ = match_.next();
  probe_sent_ = false;
  pending_snapshot_ = LogIndex(0);
  inflights_.reset();
}

void Progress::become_snapshot(LogIndex snapshot_index) {
  state_ = ProgressState::kSnapshot;
  probe_sent_ = false;
  pending_snapshot_ = snapshot_index;
  inflights_.reset();
}

bool Progress::maybe_update(LogIndex index) {
  bool updated = false;
  if (match_ < index) {
    match_ = index;
    updated = true;
    probe_sent_ = false;
  }
  next_ = std::max(next_, index.next());
  return updated;
}

bool Progress::maybe_decrease_to(LogIndex rejected, LogIndex hint) {
  if (state_ == ProgressState::kReplicate) {
    // Stale when the rejected append is one the follower already matched.
    if (rejected <= match_) return false;
    next_ = match_.next();
    return true;
  }
  // In probe only the latest probe (after next - 1) counts.
  if (next_.prev() != rejected) return false;
  next_ = std::max(std::min(rejected, hint.next()), match_.next());
  probe_sent_ = false;
  return true;
}

void Progress::sent_entries(std::uint64_t count, LogIndex last, std::uint64_t bytes) {
  if (state_ == ProgressState::kReplicate) {
    if (count > 0) {
      next_ = last.next();
      inflights_.add(last, bytes);
    }
  } else if (state_ == ProgressState::kProbe) {
    probe_sent_ = true;
  }
}

void Progress::on_heartbeat_response() {
  probe_sent_ = false;
  if (state_ == ProgressState::kReplicate && inflights_.full()) inflights_.free_first_one();
}

bool Progress::paused() const {
  switch (state_) {
    case ProgressState::kProbe: return probe_sent_;
    case ProgressState::kReplicate: return inflights_.full();
    case ProgressState::kSnapshot: return true;
  }
  return true;
}

PeerProgress Progress::info() const {
  PeerProgress p;
  p.match = match_;
  p.next = next_;
  p.state = state_;
  p.inflight_messages = inflights_.count();
  p.inflight_bytes = inflights_.bytes();
  p.learner = learner_;
  p.recent_active = recent_active_;
  return p;
}

}  // namespace nodenomad
