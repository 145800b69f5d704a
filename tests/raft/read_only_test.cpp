// Linearizable reads: ReadIndex with a heartbeat round, follower reads
// forwarded to the leader, the new leader's first commit, and lease reads.
#include <algorithm>

#include "raft/raft_test_support.hpp"

namespace nodenomad {
namespace {

using raft_test::Cluster;
using raft_test::make_cluster;
using raft_test::node;
using raft_test::nodes;

bool has_read(Cluster& c, const NodeId& id, const std::string& context) {
  const auto& reads = c.test_node(id).read_states;
  return std::any_of(reads.begin(), reads.end(),
                     [&](const ReadState& r) { return r.context == context; });
}

ReadState read_of(Cluster& c, const NodeId& id, const std::string& context) {
  for (const ReadState& r : c.test_node(id).read_states) {
    if (r.context == context) return r;
  }
  FAIL("no read state for " << context);
  return {};
}

bool is_heartbeat(const Message& m) { return m.type == MessageType::kHeartbeat; }

TEST_CASE("raft read index: the leader confirms leadership with a heartbeat round",
          "[raft][read]") {
  Cluster cluster = make_cluster(nodes(1, 3));
  cluster.elect(node(1));
  REQUIRE(cluster.propose(node(1), "w").is_ok());
  cluster.stabilize();
  REQUIRE(cluster.engine(node(1)).read_index("r1").is_ok());
  Ready rd = cluster.engine(node(1)).ready();
  CHECK(rd.read_states.empty());
  CHECK(std::count_if(rd.messages.begin(), rd.messages.end(), is_heartbeat) == 2);
  cluster.complete_ready(node(1), rd);
  cluster.stabilize();
  const ReadState r = read_of(cluster, node(1), "r1");
  CHECK(r.index == LogIndex(2));
}

TEST_CASE("raft read index: a leader cut off from its quorum never releases a read",
          "[raft][read]") {
  Cluster cluster = make_cluster(nodes(1, 3));
  cluster.elect(node(1));
  cluster.isolate(node(1));
  REQUIRE(cluster.engine(node(1)).read_index("stale?").is_ok());
  for (int i = 0; i < 40; ++i) {
    cluster.tick_all();
    cluster.stabilize();
  }
  // Meanwhile the others moved on; n1 stepped down without answering.
  CHECK(cluster.engine(node(1)).role() != RaftRole::kLeader);
  CHECK_FALSE(has_read(cluster, node(1), "stale?"));
}

TEST_CASE("raft read index: a new leader serves reads only after its first commit",
          "[raft][read]") {
  Cluster cluster = make_cluster(nodes(1, 3));
  cluster.drop_rule = [](const Message& m) { return m.type == MessageType::kAppend; };
  cluster.elect(node(1));
  REQUIRE(cluster.engine(node(1)).commit_index() == LogIndex(0));
  REQUIRE(cluster.engine(node(1)).read_index("early").is_ok());
  Ready rd = cluster.engine(node(1)).ready();
  // Waiting for the no-op: no round is started yet.
  CHECK(std::none_of(rd.messages.begin(), rd.messages.end(), is_heartbeat));
  cluster.complete_ready(node(1), rd);
  cluster.stabilize();
  CHECK_FALSE(has_read(cluster, node(1), "early"));
  cluster.drop_rule = nullptr;
  cluster.tick(node(1));
  cluster.stabilize();
  const ReadState r = read_of(cluster, node(1), "early");
  CHECK(r.index == LogIndex(1));
  CHECK(cluster.engine(node(1)).commit_index() == LogIndex(1));
}

TEST_CASE("raft read index: a follower's read goes through the leader", "[raft][read]") {
  Cluster cluster = make_cluster(nodes(1, 3));
  cluster.elect(node(1));
  for (int i = 0; i < 5; ++i) REQUIRE(cluster.propose(node(1), "w").is_ok());
  cluster.process_ready(node(1));
  cluster.deliver_all();  // the followers have the entries, not yet the commit
  cluster.process_all_ready();
  cluster.deliver_all();
  REQUIRE(cluster.engine(node(1)).commit_index() == LogIndex(6));
  REQUIRE(cluster.engine(node(3)).read_index("follower-read").is_ok());
  cluster.stabilize();
  // The read index is the leader's commit, which covers every acknowledged
  // write, whatever the follower had applied when it asked.
  const ReadState r = read_of(cluster, node(3), "follower-read");
  CHECK(r.index == LogIndex(6));
  CHECK(cluster.engine(node(3)).applied_index() >= r.index);
}

TEST_CASE("raft read index: a read without a known leader answers kNotLeader",
          "[raft][read]") {
  Cluster cluster = make_cluster(nodes(1, 3));
  const Status s = cluster.engine(node(2)).read_index("nobody");
  CHECK(s.is(StatusCode::kNotLeader));
}

TEST_CASE("raft read index: max_pending_reads bounds the waiting reads", "[raft][read]") {
  RaftConfig config = raft_test::default_config();
  config.max_pending_reads = 4;
  Cluster cluster = make_cluster(nodes(1, 3), {}, config);
  cluster.elect(node(1));
  cluster.isolate(node(1));
  for (int i = 0; i < 4; ++i) REQUIRE(cluster.engine(node(1)).read_index("r").is_ok());
  CHECK(cluster.engine(node(1)).read_index("r").is(StatusCode::kBusy));
}

// Lease reads -----------------------------------------------------------------

RaftConfig lease_config() {
  RaftConfig c = raft_test::default_config();
  c.read_mode = ReadMode::kLease;
  c.lease_drift_ticks = 2;
  return c;
}

// Asks for a read and runs one Ready cycle: true when it was served at once,
// without a heartbeat round.
bool served_at_once(Cluster& cluster, const NodeId& id, const std::string& context) {
  if (!cluster.engine(id).read_index(context).is_ok()) return false;  // no leader known
  if (!cluster.engine(id).has_ready()) return false;
  Ready rd = cluster.engine(id).ready();
  const bool served = std::any_of(rd.read_states.begin(), rd.read_states.end(),
                                  [&](const ReadState& r) { return r.context == context; });
  if (served) CHECK(std::none_of(rd.messages.begin(), rd.messages.end(), is_heartbeat));
  cluster.complete_ready(id, rd);
  return served;
}

TEST_CASE("raft lease read: served without a round while the lease holds",
          "[raft][read][lease]") {
  Cluster cluster = make_cluster(nodes(1, 3), {}, lease_config());
  cluster.elect(node(1));
  // No heartbeat round acknowledged yet: the first read needs a round.
  CHECK_FALSE(served_at_once(cluster, node(1), "first"));
  cluster.stabilize();
  CHECK(has_read(cluster, node(1), "first"));
  CHECK(served_at_once(cluster, node(1), "leased"));
}

TEST_CASE("raft lease read: a read that refuses the lease waits for a heartbeat round",
          "[raft][read][lease]") {
  Cluster cluster = make_cluster(nodes(1, 3), {}, lease_config());
  cluster.elect(node(1));
  REQUIRE(cluster.engine(node(1)).read_index("warm").is_ok());
  cluster.stabilize();
  REQUIRE(served_at_once(cluster, node(1), "leased"));  // the lease holds
  // The same leader, the same lease, but the caller asked for ReadIndex.
  REQUIRE(cluster.engine(node(1)).read_index("strict", /*allow_lease=*/false).is_ok());
  REQUIRE(cluster.engine(node(1)).has_ready());
  Ready rd = cluster.engine(node(1)).ready();
  CHECK(std::none_of(rd.read_states.begin(), rd.read_states.end(),
                     [](const ReadState& r) { return r.context == "strict"; }));
  CHECK(std::any_of(rd.messages.begin(), rd.messages.end(), is_heartbeat));
  cluster.complete_ready(node(1), rd);
  cluster.stabilize();
  CHECK(has_read(cluster, node(1), "strict"));
}

TEST_CASE("raft lease read: the lease ends election_timeout - lease_drift ticks after the "
          "acknowledged heartbeat was sent, before any other node may be elected",
          "[raft][read][lease]") {
  Cluster cluster = make_cluster(nodes(1, 3), {}, lease_config());
  cluster.elect(node(1));
  cluster.tick_all();  // heartbeat round sent at this tick
  cluster.stabilize();
  cluster.isolate(node(1));
  int served_ticks = 0;
  for (int k = 1; k <= 30; ++k) {
    const bool served = served_at_once(cluster, node(1), "k" + std::to_string(k));
    if (served) {
      ++served_ticks;
      // While n1 serves from its lease, nobody else may lead.
      for (const NodeId& id : nodes(2, 3)) CHECK(cluster.engine(id).role() != RaftRole::kLeader);
    }
    cluster.tick_all();
    cluster.stabilize();
  }
  // Reads at ticks 0..7 after the round: 10 - 2 = 8 ticks of lease.
  CHECK(served_ticks == 8);
  CHECK_FALSE(cluster.leader().empty());
  CHECK(cluster.leader() != node(1));
}

TEST_CASE("raft lease read: leadership transfer ends the lease at once", "[raft][read][lease]") {
  Cluster cluster = make_cluster(nodes(1, 3), {}, lease_config());
  cluster.elect(node(1));
  cluster.tick_all();
  cluster.stabilize();
  REQUIRE(served_at_once(cluster, node(1), "before"));
  REQUIRE(cluster.engine(node(1)).transfer_leadership(node(2)).is_ok());
  CHECK_FALSE(served_at_once(cluster, node(1), "during"));
}

// Found while building the whole-cluster simulator: a follower that
// acknowledged the lease, crashed and restarted at once had forgotten its
// leader and voted, so another node could lead (and commit) while the old
// leader still served lease reads.
TEST_CASE("raft lease read: a follower that restarts keeps the lease it acknowledged",
          "[raft][read][lease]") {
  Cluster cluster = make_cluster(nodes(1, 5), {}, lease_config());
  cluster.elect(node(1));
  // n4 and n5 lose n1; n2 and n3 go on acknowledging its rounds.
  cluster.cut(node(1), node(4));
  cluster.cut(node(1), node(5));
  for (int i = 0; i < 25; ++i) {
    cluster.tick_all();
    cluster.stabilize();
  }
  REQUIRE(cluster.engine(node(1)).role() == RaftRole::kLeader);
  // Within one tick: n1 is cut off, n2 crashes and restarts, n4 campaigns.
  cluster.isolate(node(1));
  cluster.crash(node(2));
  cluster.restart(node(2));
  REQUIRE(cluster.engine(node(4)).campaign().is_ok());
  cluster.stabilize();
  CHECK(cluster.engine(node(4)).role() != RaftRole::kLeader);
  CHECK(served_at_once(cluster, node(1), "leased"));
  // An election timeout later the lease is over and the others move on.
  for (int i = 0; i < 100 && cluster.leader() == node(1); ++i) {
    cluster.tick_all();
    cluster.stabilize();
  }
  CHECK_FALSE(cluster.leader().empty());
  CHECK(cluster.leader() != node(1));
}

TEST_CASE("raft config: lease reads need check-quorum", "[raft][read][lease]") {
  RaftConfig config = lease_config();
  config.id = NodeId("n1");
  config.check_quorum = false;
  CHECK(validate_raft_config(config).is(StatusCode::kInvalidArgument));
  config.check_quorum = true;
  CHECK(validate_raft_config(config).is_ok());
  config.heartbeat_interval_ticks = config.election_timeout_ticks;
  CHECK_FALSE(validate_raft_config(config).is_ok());
}

}  // namespace
}  // namespace nodenomad
