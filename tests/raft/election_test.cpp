// Leader election: randomized timeouts, the persistence rule for votes,
// pre-vote, check-quorum, and the partially connected node of the 2020
// Cloudflare/etcd outage.
#include <set>

#include "raft/raft_test_support.hpp"

namespace nodenomad {
namespace {

using raft_test::Cluster;
using raft_test::make_cluster;
using raft_test::node;
using raft_test::nodes;
using raft_test::of_type;
using raft_test::tick_until_leader;

RaftConfig without_pre_vote() {
  RaftConfig c = raft_test::default_config();
  c.pre_vote = false;
  return c;
}

TEST_CASE("raft election: the election timeout is randomized between T and 2T ticks",
          "[raft][election]") {
  const std::uint64_t base_seed = raft_test::test_seed("raft election timeout");
  std::set<int> seen;
  for (std::uint64_t seed = base_seed; seed < base_seed + 64; ++seed) {
    Cluster cluster = make_cluster(nodes(1, 2), {}, raft_test::default_config(), seed);
    cluster.crash(node(2));
    int ticks = 0;
    while (cluster.engine(node(1)).role() == RaftRole::kFollower && ticks < 100) {
      cluster.tick(node(1));
      ++ticks;
    }
    INFO("seed " << seed);
    CHECK(ticks >= 10);
    CHECK(ticks < 20);
    seen.insert(ticks);
  }
  // 64 draws from 10 values: a fixed timeout would show one value only.
  CHECK(seen.size() >= 5);
}

TEST_CASE("raft election: election_timeout_max_ticks sets the range of the timeout",
          "[raft][election]") {
  const std::uint64_t base_seed = raft_test::test_seed("raft election timeout range");
  RaftConfig config = raft_test::default_config();
  config.election_timeout_ticks = 10;
  config.election_timeout_max_ticks = 12;
  std::set<int> seen;
  for (std::uint64_t seed = base_seed; seed < base_seed + 64; ++seed) {
    Cluster cluster = make_cluster(nodes(1, 2), {}, config, seed);
    cluster.crash(node(2));
    int ticks = 0;
    while (cluster.engine(node(1)).role() == RaftRole::kFollower && ticks < 100) {
      cluster.tick(node(1));
      ++ticks;
    }
    INFO("seed " << seed);
    CHECK(ticks >= 10);
    CHECK(ticks <= 12);
    seen.insert(ticks);
  }
  CHECK(seen == std::set<int>{10, 11, 12});
  config.id = node(1);
  REQUIRE(validate_raft_config(config).is_ok());
  config.election_timeout_max_ticks = 9;
  CHECK(validate_raft_config(config).is(StatusCode::kInvalidArgument));
  CHECK(validate_raft_config(config).message().find("election_timeout_max_ticks") !=
        std::string_view::npos);
}

TEST_CASE("raft election: a single voter elects itself and commits its no-op",
          "[raft][election]") {
  Cluster cluster = make_cluster({node(1)});
  const NodeId leader = tick_until_leader(cluster);
  REQUIRE(leader == node(1));
  CHECK(cluster.engine(node(1)).term() == Term(1));
  CHECK(cluster.engine(node(1)).commit_index() == LogIndex(1));
}

TEST_CASE("raft election: three nodes agree on one leader", "[raft][election]") {
  Cluster cluster = make_cluster(nodes(1, 3));
  const NodeId leader = tick_until_leader(cluster);
  REQUIRE_FALSE(leader.empty());
  cluster.tick_all(3);
  cluster.stabilize();
  for (const NodeId& id : nodes(1, 3)) {
    CHECK(cluster.engine(id).leader() == leader);
    CHECK(cluster.engine(id).term() == cluster.engine(leader).term());
    CHECK(cluster.engine(id).commit_index() == LogIndex(1));
  }
}

TEST_CASE("raft election: a vote is durable before the vote response may leave",
          "[raft][election][persistence]") {
  Cluster cluster = make_cluster(nodes(1, 3), {}, without_pre_vote());
  REQUIRE(cluster.engine(node(1)).campaign().is_ok());
  Ready candidate = cluster.engine(node(1)).ready();
  // The candidate's own term and vote are in the hard state to persist; its
  // vote requests may leave at once.
  REQUIRE(candidate.hard_state.has_value());
  CHECK(candidate.hard_state->term == Term(1));
  CHECK(candidate.hard_state->vote == node(1));
  CHECK(candidate.messages.size() == 2);
  CHECK(candidate.messages_after_persist.empty());
  cluster.complete_ready(node(1), candidate);
  REQUIRE(cluster.deliver_first([](const Message& m) { return m.to == node(2); }));

  Ready voter = cluster.engine(node(2)).ready();
  REQUIRE(voter.hard_state.has_value());
  CHECK(voter.hard_state->term == Term(1));
  CHECK(voter.hard_state->vote == node(1));
  CHECK(voter.messages.empty());
  REQUIRE(voter.messages_after_persist.size() == 1);
  CHECK(voter.messages_after_persist[0].type == MessageType::kVoteResponse);
  CHECK_FALSE(voter.messages_after_persist[0].reject);
  // Nothing was persisted yet: the store still says "no vote".
  CHECK(cluster.store(node(2)).hard_state().vote.empty());
  cluster.complete_ready(node(2), voter);
  CHECK(cluster.store(node(2)).hard_state().vote == node(1));
}

TEST_CASE("raft election: a candidate counts its own vote only once it is durable",
          "[raft][election][persistence]") {
  Cluster cluster = make_cluster({node(1)}, {}, without_pre_vote());
  REQUIRE(cluster.engine(node(1)).campaign().is_ok());
  Ready rd = cluster.engine(node(1)).ready();
  // A group of one: the vote would win at once, but it is not durable yet.
  CHECK(cluster.engine(node(1)).role() == RaftRole::kCandidate);
  cluster.complete_ready(node(1), rd);
  CHECK(cluster.engine(node(1)).role() == RaftRole::kLeader);
}

TEST_CASE("raft election: term and vote survive a restart", "[raft][election][persistence]") {
  Cluster cluster = make_cluster(nodes(1, 3), {}, without_pre_vote());
  REQUIRE(cluster.engine(node(1)).campaign().is_ok());
  cluster.process_ready(node(1));
  cluster.drop_queued([](const Message& m) { return m.to != node(2); });
  cluster.deliver_all();
  cluster.process_ready(node(2));
  cluster.queue().clear();
  cluster.crash(node(2));
  cluster.restart(node(2));
  CHECK(cluster.engine(node(2)).hard_state().term == Term(1));
  CHECK(cluster.engine(node(2)).hard_state().vote == node(1));

  // n3 campaigns in the same term: n2 already voted and must refuse.
  REQUIRE(cluster.engine(node(3)).campaign().is_ok());
  cluster.process_ready(node(3));
  cluster.drop_queued([](const Message& m) { return m.to != node(2); });
  cluster.deliver_all();
  cluster.process_ready(node(2));
  REQUIRE(cluster.queue().size() == 1);
  CHECK(cluster.queue()[0].type == MessageType::kVoteResponse);
  CHECK(cluster.queue()[0].reject);
}

TEST_CASE("raft election: a node with a shorter log cannot win", "[raft][election]") {
  Cluster cluster = make_cluster(nodes(1, 3));
  cluster.elect(node(1));
  cluster.isolate(node(3));
  for (int i = 0; i < 3; ++i) REQUIRE(cluster.propose(node(1), "x").is_ok());
  cluster.stabilize();
  REQUIRE(cluster.engine(node(2)).commit_index() == LogIndex(4));
  cluster.crash(node(1));
  cluster.heal();
  cluster.tick_all(25);  // leases lapse
  cluster.stabilize();
  REQUIRE(cluster.engine(node(3)).campaign().is_ok());
  cluster.stabilize();
  CHECK(cluster.engine(node(3)).role() != RaftRole::kLeader);
  const NodeId leader = tick_until_leader(cluster);
  CHECK(leader == node(2));
  CHECK(cluster.engine(node(2)).last_index() >= LogIndex(4));
}

TEST_CASE("raft election: with pre-vote a cut-off node returns without raising the term",
          "[raft][election][pre_vote]") {
  Cluster cluster = make_cluster(nodes(1, 3));
  cluster.elect(node(1));
  const Term term = cluster.engine(node(1)).term();
  cluster.isolate(node(3));
  for (int i = 0; i < 100; ++i) {
    cluster.tick_all();
    cluster.stabilize();
  }
  CHECK(cluster.engine(node(3)).term() == term);
  cluster.heal();
  for (int i = 0; i < 30; ++i) {
    cluster.tick_all();
    cluster.stabilize();
  }
  CHECK(cluster.engine(node(1)).role() == RaftRole::kLeader);
  CHECK(cluster.engine(node(1)).term() == term);
  CHECK(cluster.engine(node(3)).leader() == node(1));
}

TEST_CASE("raft election: without pre-vote a cut-off node deposes the leader on return",
          "[raft][election][pre_vote]") {
  // The contrast that shows the test above can fail.
  RaftConfig config = raft_test::default_config();
  config.pre_vote = false;
  config.check_quorum = false;
  Cluster cluster = make_cluster(nodes(1, 3), {}, config);
  cluster.elect(node(1));
  const Term term = cluster.engine(node(1)).term();
  cluster.isolate(node(3));
  for (int i = 0; i < 100; ++i) {
    cluster.tick_all();
    cluster.stabilize();
  }
  CHECK(cluster.engine(node(3)).term() > term);
  cluster.heal();
  for (int i = 0; i < 30; ++i) {
    cluster.tick_all();
    cluster.stabilize();
  }
  CHECK(cluster.engine(node(1)).term() > term);
}

// The partially connected node of the 2020 Cloudflare/etcd outage: n3 cannot
// reach the leader n1 but reaches n2. Returns whether the leader was ever
// deposed (its term moved) during `ticks`.
bool partial_partition_deposes_leader(bool check_quorum, int ticks) {
  RaftConfig config = raft_test::default_config();
  config.check_quorum = check_quorum;
  Cluster cluster = make_cluster(nodes(1, 3), {}, config);
  cluster.elect(node(1));
  cluster.tick_all(2);
  cluster.stabilize();
  const Term term = cluster.engine(node(1)).term();
  cluster.cut(node(1), node(3));
  bool deposed = false;
  for (int i = 0; i < ticks && !deposed; ++i) {
    cluster.tick_all();
    cluster.stabilize();
    deposed = cluster.engine(node(1)).term() != term ||
              cluster.engine(node(1)).role() != RaftRole::kLeader;
  }
  if (!deposed) {
    // The healthy majority still makes progress.
    const Result<ProposeResult> p = cluster.propose(node(1), "still-serving");
    REQUIRE(p.is_ok());
    cluster.stabilize();
    CHECK(cluster.engine(node(2)).commit_index() >= p->index);
    CHECK(cluster.engine(node(3)).term() == term);
  }
  return deposed;
}

TEST_CASE("raft election: pre-vote and check-quorum keep a partially connected node from "
          "deposing a healthy leader (2020 Cloudflare/etcd outage)",
          "[raft][election][check_quorum]") {
  CHECK_FALSE(partial_partition_deposes_leader(true, 300));
  // Pre-vote alone is not enough: n2 grants n3's pre-vote, n3 wins the term.
  CHECK(partial_partition_deposes_leader(false, 300));
}

TEST_CASE("raft election: check-quorum makes a leader cut off from its quorum step down",
          "[raft][election][check_quorum]") {
  Cluster cluster = make_cluster(nodes(1, 3));
  cluster.elect(node(1));
  cluster.isolate(node(1));
  // A new leader counts every peer active for its first election timeout;
  // the second check finds no quorum.
  cluster.tick(node(1), 10);
  CHECK(cluster.engine(node(1)).role() == RaftRole::kLeader);
  cluster.tick(node(1), 10);
  cluster.process_all_ready();
  CHECK(cluster.engine(node(1)).role() == RaftRole::kFollower);
  CHECK(cluster.engine(node(1)).leader().empty());
}

TEST_CASE("raft election: a deposed leader follows the new one after the partition heals",
          "[raft][election]") {
  Cluster cluster = make_cluster(nodes(1, 5));
  cluster.elect(node(1));
  cluster.partition({{node(1)}, nodes(2, 5)});
  NodeId leader;
  for (int i = 0; i < 200 && (leader.empty() || leader == node(1)); ++i) {
    cluster.tick_all();
    cluster.stabilize();
    leader = cluster.leader();
  }
  REQUIRE_FALSE(leader.empty());
  REQUIRE(leader != node(1));
  cluster.heal();
  for (int i = 0; i < 5; ++i) {
    cluster.tick_all();
    cluster.stabilize();
  }
  CHECK(cluster.engine(node(1)).role() == RaftRole::kFollower);
  CHECK(cluster.engine(node(1)).leader() == leader);
  CHECK(cluster.engine(node(1)).term() == cluster.engine(leader).term());
}

TEST_CASE("raft election: a learner never campaigns", "[raft][election][membership]") {
  Cluster cluster = make_cluster(nodes(1, 2), {node(3)});
  CHECK_FALSE(cluster.engine(node(3)).campaign().is_ok());
  cluster.crash(node(1));
  cluster.crash(node(2));
  cluster.tick(node(3), 100);
  CHECK(cluster.engine(node(3)).role() == RaftRole::kFollower);
  CHECK(cluster.engine(node(3)).term() == Term(0));
}

}  // namespace
}  // namespace nodenomad
