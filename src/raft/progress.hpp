// Progress: the leader's view of one follower's log, after etcd-io/raft's
// tracker.Progress. A follower is probed (one append per heartbeat until its
// log matches), then replicated to optimistically (next advances as appends
// leave, within the in-flight bounds), or sent a snapshot.
#pragma once

#include <cstdint>
#include <deque>

#include "nodenomad/raft/raft_engine.hpp"

namespace nodenomad {

// The appends in flight to one follower: (last index, payload bytes) of each,
// oldest first. Bounded by a message count and a byte count.
class Inflights {
 public:
  Inflights(std::uint32_t max_messages, std::uint64_t max_bytes)
      : max_messages_(max_messages), max_bytes_(max_bytes) {}

  bool full() const { return items_.size() >= max_messages_ || bytes_ >= max_bytes_; }
  // A smaller limit leaves what is in flight alone: the window is full
  // until enough of it is acknowledged.
  void set_max_bytes(std::uint64_t max_bytes) { max_bytes_ = max_bytes; }
  std::uint32_t count() const { return static_cast<std::uint32_t>(items_.size()); }
  std::uint64_t bytes() const { return bytes_; }

  void add(LogIndex last, std::uint64_t bytes);
  // Forgets every message whose last index is at or below `index`.
  void free_le(LogIndex index);
  void free_first_one();
  void reset();

 private:
  struct Item {
    LogIndex last;
    std::uint64_t bytes;
  };
  std::uint32_t max_messages_;
  std::uint64_t max_bytes_;
  std::deque<Item> items_;  // at most max_messages_
  std::uint64_t bytes_ = 0;
};

class Progress {
 public:
  // In-flight limits: messages, and payload bytes for a voter and for a
  // learner (the window follows set_learner).
  struct Window {
    std::uint32_t messages;
    std::uint64_t voter_bytes;
    std::uint64_t learner_bytes;
  };
  Progress(LogIndex next, const Window& window, bool learner)
      : next_(next),
        learner_(learner),
        window_(window),
        inflights_(window.messages, learner ? window.learner_bytes : window.voter_bytes) {}

  LogIndex match() const { return match_; }
  LogIndex next() const { return next_; }
  ProgressState state() const { return state_; }
  bool learner() const { return learner_; }
  void set_learner(bool learner) {
    learner_ = learner;
    inflights_.set_max_bytes(learner ? window_.learner_bytes : window_.voter_bytes);
  }
  LogIndex pending_snapshot() const { return pending_snapshot_; }
  const Inflights& inflights() const { return inflights_; }
  Inflights& inflights() { return inflights_; }

  bool recent_active() const { return recent_active_; }
  void set_recent_active(bool active) { recent_active_ = active; }
  std::uint64_t acked_round() const { return acked_round_; }
  void ack_round(std::uint64_t round) { acked_round_ = std::max(acked_round_, round); }

  void become_probe();
  void become_replicate();
  void become_snapshot(LogIndex snapshot_index);

  // A success response for `index`: true when it moved match forward.
  bool maybe_update(LogIndex index);
  // A rejection of the append after `rejected`, with the follower's hint;
  // false when the rejection is stale.
  bool maybe_decrease_to(LogIndex rejected, LogIndex hint);
  // The answer to the current probe denies an index at or below match: the
  // peer no longer holds what it acknowledged (a node whose store was
  // emptied and that was added back under the same id; an acknowledgement
  // of its former self arrived after the new one's progress began).
  bool probe_denies_match(LogIndex rejected) const {
    return state_ == ProgressState::kProbe && next_.prev() == rejected && rejected <= match_;
  }
  // Forgets match, so that the next probe goes by the peer's own hint.
  void forget_match() { match_ = LogIndex(0); }
  // An append of `count` entries and `bytes` payload bytes, ending at `last`, left.
  void sent_entries(std::uint64_t count, LogIndex last, std::uint64_t bytes);
  // A heartbeat response arrived: probing may resume, and in replicate a
  // full window frees one slot so a lost append is noticed.
  void on_heartbeat_response();

  bool paused() const;
  PeerProgress info() const;

 private:
  LogIndex match_;
  LogIndex next_;
  ProgressState state_ = ProgressState::kProbe;
  bool probe_sent_ = false;  // probe: an append is out; wait for a reply or a heartbeat
  bool learner_ = false;
  bool recent_active_ = false;
  LogIndex pending_snapshot_;
  std::uint64_t acked_round_ = 0;
  Window window_;
  Inflights inflights_;
};

}  // namespace nodenomad
