// GroupReplica's compaction rule: a whole-state snapshot every
// compact_every_entries, but for a large state only once the log since the
// last one holds compact_log_fraction of the state's bytes; and a snapshot
// written off the loop compacts the log only when it is done.
#include <catch2/catch.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "node/group_replica.hpp"
#include "node/replica_test_util.hpp"

namespace nodenomad::node {
namespace {

// Syncs at once when asked; runs off-loop work when the test says so.
class Host final : public replica_test::QuietHost {
 public:
  void run_off_loop(std::function<Status()> work, std::function<void(Status)> done) override {
    queued.push_back([work = std::move(work), done = std::move(done)] { done(work()); });
  }

  std::vector<std::function<void()>> queued;  // off-loop work not yet run
};

struct OneVoter {
  explicit OneVoter(ReplicaLimits limits, bool off_loop) {
    ReplicaParts parts;
    // Its "state" is only state_bytes, which the test sets.
    parts.state_machine = std::make_shared<replica_test::AppliesAnything>();
    parts.persist_state = [this] {
      ++snapshots;
      return Status::ok();
    };
    parts.persist_state_off_loop = off_loop;
    parts.state_bytes = [this] { return state_bytes; };
    replica = replica_test::open_one_voter_leader(std::move(parts), limits, host, host.sync_asked);
  }

  void settle() { replica_test::settle(*replica, host.sync_asked); }

  // Proposes `n` entries of `bytes` each and applies them.
  void write(int n, std::size_t bytes) {
    for (int i = 0; i < n; ++i) {
      bool answered = false;
      replica->propose(std::string(bytes, 'v'), [&](Result<std::string> r) {
        REQUIRE(r.is_ok());
        answered = true;
      });
      settle();
      REQUIRE(answered);
    }
  }

  LogIndex first_index() const { return replica->engine().first_index(); }

  Host host;
  std::unique_ptr<GroupReplica> replica;
  int snapshots = 0;
  std::uint64_t state_bytes = 0;
};

ReplicaLimits limits() {
  ReplicaLimits l;
  l.compact_every_entries = 10;
  l.compact_keep_entries = 2;
  l.compact_log_fraction = 0.5;
  l.compact_small_state_bytes = 1'000;
  return l;
}

TEST_CASE("group replica: a small state is snapshotted every compact_every_entries",
          "[node][compaction]") {
  OneVoter g(limits(), /*off_loop=*/false);
  g.state_bytes = 999;  // under compact_small_state_bytes
  g.write(25, 1);
  CHECK(g.snapshots == 2);
  CHECK(g.first_index() > LogIndex(1));
}

TEST_CASE("group replica: a large state waits until the log holds the fraction of it",
          "[node][compaction]") {
  OneVoter g(limits(), /*off_loop=*/false);
  g.state_bytes = 10'000;  // 0.5 of it: 5,000 bytes of log
  g.write(40, 100);        // 4,000 bytes in 40 entries: not yet
  CHECK(g.snapshots == 0);
  CHECK(g.first_index() == LogIndex(1));
  g.write(10, 100);  // 5,000: now
  CHECK(g.snapshots == 1);
  g.write(10, 100);  // the count starts over: 1,000 bytes
  CHECK(g.snapshots == 1);
  g.state_bytes = 0;  // a fraction of off means every compact_every_entries
  g.write(1, 1);
  CHECK(g.snapshots == 2);
}

TEST_CASE("group replica: a snapshot written off the loop compacts the log when done",
          "[node][compaction]") {
  OneVoter g(limits(), /*off_loop=*/true);
  g.write(12, 1);
  REQUIRE(g.host.queued.size() == 1);
  CHECK(g.snapshots == 0);
  CHECK(g.first_index() == LogIndex(1));  // nothing dropped before the file exists
  g.write(12, 1);
  CHECK(g.host.queued.size() == 1);  // one at a time
  auto work = std::move(g.host.queued.front());
  g.host.queued.clear();
  work();
  CHECK(g.snapshots == 1);
  CHECK(g.first_index() > LogIndex(1));
  g.write(1, 1);  // past compact_every_entries since the first: the next one
  CHECK(g.host.queued.size() == 1);
}

TEST_CASE("group replica: an off-loop snapshot finishing after the replica is gone is ignored",
          "[node][compaction]") {
  auto g = std::make_unique<OneVoter>(limits(), /*off_loop=*/true);
  g->write(12, 1);
  REQUIRE(g->host.queued.size() == 1);
  auto work = std::move(g->host.queued.front());
  g->host.queued.clear();
  int* snapshots = &g->snapshots;
  g->replica.reset();  // dropped (a migration's Cleanup) while writing
  work();              // under ASan, a use of the replica would be caught here
  CHECK(*snapshots == 1);
}

}  // namespace
}  // namespace nodenomad::node
