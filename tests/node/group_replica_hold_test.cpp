// GroupReplica's apply hold (a learner held still while Verify digests it):
// a release applies what the hold kept a turn of the loop at a time, in
// order, with entries committed meanwhile behind them, and a new hold during
// that drain stops it at the new index.
#include <catch2/catch.hpp>

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "node/group_replica.hpp"
#include "node/replica_test_util.hpp"

namespace nodenomad::node {
namespace {

// Records the index of every entry applied, in order.
class RecordingMachine final : public StateMachine {
 public:
  Result<std::string> apply(LogIndex index, std::string_view /*command*/) override {
    applied.push_back(index);
    return std::string();
  }
  LogIndex last_applied_index() const override {
    return applied.empty() ? LogIndex(0) : applied.back();
  }
  Result<std::unique_ptr<SnapshotSource>> open_snapshot() override {
    return Status::not_supported("no snapshots here");
  }
  Result<std::unique_ptr<SnapshotSink>> begin_restore(LogIndex /*index*/) override {
    return Status::not_supported("no snapshots here");
  }

  std::vector<LogIndex> applied;
};

// Syncs at once when asked; keeps what is posted to the loop until the test
// runs it.
class Host final : public replica_test::QuietHost {
 public:
  void post_to_loop(std::function<void()> fn) override { posted.push_back(std::move(fn)); }

  std::deque<std::function<void()>> posted;
};

struct HeldReplica {
  HeldReplica() {
    ReplicaParts parts;
    parts.state_machine = machine;
    replica = replica_test::open_one_voter_leader(std::move(parts), ReplicaLimits{}, host,
                                                  host.sync_asked);
  }

  void settle() { replica_test::settle(*replica, host.sync_asked); }

  // Commits `n` entries of `bytes` each; their answers come when applied.
  void write(int n, std::size_t bytes) {
    for (int i = 0; i < n; ++i) {
      replica->propose(std::string(bytes, 'v'), [this](Result<std::string> r) {
        REQUIRE(r.is_ok());
        ++answered;
      });
      settle();
    }
  }

  // Runs one posted turn; false when none is posted.
  bool run_turn() {
    if (host.posted.empty()) return false;
    auto fn = std::move(host.posted.front());
    host.posted.pop_front();
    fn();
    return true;
  }

  LogIndex applied() const { return machine->last_applied_index(); }

  std::shared_ptr<RecordingMachine> machine = std::make_shared<RecordingMachine>();
  Host host;
  std::unique_ptr<GroupReplica> replica;
  int answered = 0;
};

// Every index from the first applied one on, once, in order.
bool in_order(const std::vector<LogIndex>& applied) {
  for (std::size_t i = 1; i < applied.size(); ++i) {
    if (applied[i] != applied[i - 1].next()) return false;
  }
  return true;
}

constexpr std::size_t kEntryBytes = 100'000;

TEST_CASE("group replica: a released hold applies what it kept a turn at a time, in order",
          "[node][hold]") {
  HeldReplica g;
  g.write(2, 10);
  const LogIndex hold_at = g.applied();
  g.replica->hold_apply_after(hold_at);
  g.write(40, kEntryBytes);  // 4 MB committed, none applied
  CHECK(g.applied() == hold_at);
  CHECK(g.answered == 2);
  CHECK(g.host.posted.empty());

  g.replica->release_apply_hold();
  // One turn: entries until a MiB is passed (11 of 100 kB), then a turn posted.
  CHECK(g.applied() == LogIndex(hold_at.value() + 11));
  CHECK(g.host.posted.size() == 1);
  CHECK_FALSE(g.replica->apply_held());

  // Committed during the drain: it waits behind the kept entries.
  g.write(1, 10);
  CHECK(g.applied() == LogIndex(hold_at.value() + 11));
  int turns = 0;
  while (g.run_turn()) ++turns;
  CHECK(turns == 3);  // 29 kept entries left, 11 a turn
  CHECK(g.applied() == g.replica->engine().last_index());
  CHECK(g.answered == 2 + 40 + 1);
  CHECK(in_order(g.machine->applied));
  // Nothing kept any more: the next entry is applied as it commits.
  g.write(1, 10);
  CHECK(g.applied() == g.replica->engine().last_index());
  CHECK(g.host.posted.empty());
}

TEST_CASE("group replica: a hold taken during a drain stops it at its index", "[node][hold]") {
  HeldReplica g;
  g.write(1, 10);
  const LogIndex first_hold = g.applied();
  g.replica->hold_apply_after(first_hold);
  g.write(30, kEntryBytes);
  g.replica->release_apply_hold();
  const LogIndex second_hold = LogIndex(g.applied().value() + 5);
  g.replica->hold_apply_after(second_hold);
  while (g.run_turn()) {
  }
  CHECK(g.applied() == second_hold);
  CHECK(g.replica->apply_held());
  g.replica->release_apply_hold();
  while (g.run_turn()) {
  }
  CHECK(g.applied() == g.replica->engine().last_index());
  CHECK(g.answered == 1 + 30);
  CHECK(in_order(g.machine->applied));
}

}  // namespace
}  // namespace nodenomad::node
