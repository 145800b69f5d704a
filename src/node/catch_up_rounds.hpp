// When a learner fed by the log has caught up with its leader, and when it
// never will: the end of a migration's Transfer stage.
//
// Judged in rounds, as in the Raft thesis (section 4.2.1): a round ends when
// the learner holds every entry the leader had committed when the round
// began. A learner within `close_entries` of the commit, or one whose last
// round took no longer than `round_ms` (the election timeout: what the
// group could lose to a lagging new voter), has caught up.
//
// A learner slower than the write rate still finishes every round (each
// aims at a fixed index), but each takes longer than the one before. So the
// stage's stall clock counts progress only while the learner converges:
// the first round moves as long as the learner's index grows (it can be as
// long as the snapshot stream was), a later round while it has run no
// longer than the fastest one so far. A learner that keeps falling behind
// thus stalls a migration_timeout after its round passed the fastest one,
// and the stage rolls back, naming the rounds.
//
// Plain data, no clock of its own: the coordinator passes the time in.
#pragma once

#include <cstdint>
#include <string>

#include "nodenomad/types.hpp"

namespace nodenomad::node {

class CatchUpRounds {
 public:
  struct Verdict {
    bool caught_up = false;
    bool progressed = false;  // counts for the stage's stall clock
  };

  CatchUpRounds(std::uint64_t close_entries, std::uint64_t round_ms)
      : close_entries_(close_entries), round_ms_(round_ms) {}

  // One report from the leader, taken at `now_ms`: its commit index and
  // the learner's match index.
  Verdict observe(std::uint64_t now_ms, LogIndex commit, LogIndex match);

  // Where the catch-up stands, for a status note or a rollback reason:
  // "2 rounds done, the last 1800 ms for 40000 entries (fastest 1200 ms);
  // 52000 entries behind".
  std::string describe() const;

  std::uint64_t rounds_done() const { return rounds_done_; }
  std::uint64_t lag() const { return lag_; }

 private:
  void start_round(std::uint64_t now_ms, LogIndex commit, LogIndex match);

  std::uint64_t close_entries_;
  std::uint64_t round_ms_;
  bool in_round_ = false;
  LogIndex round_target_;
  LogIndex round_start_match_;
  std::uint64_t round_start_ms_ = 0;
  std::uint64_t rounds_done_ = 0;
  std::uint64_t fastest_ms_ = 0;
  std::uint64_t last_ms_ = 0;
  std::uint64_t last_entries_ = 0;
  LogIndex best_match_;
  std::uint64_t lag_ = 0;
};

}  // namespace nodenomad::node
