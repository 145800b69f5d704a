// The Raft paper's Figure 8 (Ongaro & Ousterhout 2014, section 5.4.2),
// replayed exactly on five servers S1..S5 (n1..n5): an entry of an earlier
// term that sits on a majority must not be committed by counting replicas,
// because a later leader may still overwrite it. Plain Raft, as in the paper
// (no pre-vote, no check-quorum), and each election is driven by hand.
#include "raft/raft_test_support.hpp"

namespace nodenomad {
namespace {

using raft_test::Cluster;
using raft_test::make_cluster;
using raft_test::node;
using raft_test::nodes;

RaftConfig plain_raft() {
  RaftConfig c = raft_test::default_config();
  c.pre_vote = false;
  c.check_quorum = false;
  return c;
}

// The terms of a node's log, index 1 upwards.
std::vector<std::uint64_t> log_terms(Cluster& cluster, const NodeId& id) {
  std::vector<std::uint64_t> terms;
  if (!cluster.up(id)) {
    const Result<std::vector<Entry>> entries =
        cluster.store(id).entries(LogIndex(1), cluster.store(id).last_index().next(), UINT64_MAX);
    for (const Entry& e : *entries) terms.push_back(e.term.value());
    return terms;
  }
  RaftEngine& engine = cluster.engine(id);
  for (LogIndex i(1); i <= engine.last_index(); ++i) terms.push_back(engine.term_at(i)->value());
  return terms;
}

bool is_append_from(const Message& m, const NodeId& from) {
  return m.type == MessageType::kAppend && m.from == from;
}

// Campaigns on `id` until it leads (a failed round raises the term again).
void win_election(Cluster& cluster, const NodeId& id) {
  for (int round = 0; round < 5 && cluster.engine(id).role() != RaftRole::kLeader; ++round) {
    REQUIRE(cluster.engine(id).campaign().is_ok());
    cluster.stabilize();
  }
  REQUIRE(cluster.engine(id).role() == RaftRole::kLeader);
}

// Figure 8 (a) to (c). Returns with S1 leading term 4, logs
//   S1 [1 2 4]  S2 [1 2]  S3 [1 2]  S4 [1]  S5 [1 3]   (S5 down),
// and the entry (2, term 2) on S1, S2, S3 but not committed.
void figure_8_a_to_c(Cluster& cluster) {
  // Every server holds (1, term 1), committed (S2 led term 1).
  cluster.elect(node(2));
  cluster.stabilize();
  for (const NodeId& id : nodes(1, 5)) REQUIRE(log_terms(cluster, id) == std::vector<std::uint64_t>{1});

  // (a) S1 leads term 2 and replicates (2, term 2) to S2 only.
  cluster.drop_rule = [](const Message& m) { return is_append_from(m, node(1)) && m.to != node(2); };
  win_election(cluster, node(1));
  REQUIRE(cluster.engine(node(1)).term() == Term(2));
  cluster.stabilize();
  CHECK(log_terms(cluster, node(1)) == std::vector<std::uint64_t>{1, 2});
  CHECK(log_terms(cluster, node(2)) == std::vector<std::uint64_t>{1, 2});
  CHECK(log_terms(cluster, node(3)) == std::vector<std::uint64_t>{1});
  CHECK(cluster.engine(node(1)).commit_index() == LogIndex(1));

  // (b) S1 crashes; S5 wins term 3 with votes from S3, S4 and itself, and
  // accepts a different entry at index 2, which reaches nobody.
  cluster.crash(node(1));
  cluster.drop_rule = [](const Message& m) { return is_append_from(m, node(5)); };
  win_election(cluster, node(5));
  REQUIRE(cluster.engine(node(5)).term() == Term(3));
  cluster.stabilize();
  CHECK(log_terms(cluster, node(5)) == std::vector<std::uint64_t>{1, 3});

  // (c) S5 crashes; S1 restarts and wins term 4 with votes from S1, S2, S3
  // (S4 cannot hear it).
  cluster.crash(node(5));
  cluster.restart(node(1));
  cluster.cut(node(1), node(4));
  cluster.drop_rule = [](const Message& m) { return is_append_from(m, node(1)); };
  win_election(cluster, node(1));
  REQUIRE(cluster.engine(node(1)).term() == Term(4));
  cluster.process_all_ready();
  CHECK(log_terms(cluster, node(1)) == std::vector<std::uint64_t>{1, 2, 4});

  // S1 continues replication: S2 and S3 receive (2, term 2) but not yet
  // (3, term 4): the leader's appends arrive cut after their first entry
  // (as a smaller max_append_bytes would have sent them).
  cluster.drop_rule = nullptr;
  for (int round = 0; round < 10; ++round) {
    cluster.tick(node(1));  // heartbeats resume the paused probes
    cluster.process_all_ready();
    for (Message& m : cluster.queue()) {
      if (is_append_from(m, node(1))) {
        std::erase_if(m.entries, [](const Entry& e) { return e.index > LogIndex(2); });
      }
    }
    cluster.deliver_all();
  }
  RaftEngine& s1 = cluster.engine(node(1));
  REQUIRE(s1.progress(node(2))->match == LogIndex(2));
  REQUIRE(s1.progress(node(3))->match == LogIndex(2));
  CHECK(log_terms(cluster, node(2)) == std::vector<std::uint64_t>{1, 2});
  CHECK(log_terms(cluster, node(3)) == std::vector<std::uint64_t>{1, 2});
  CHECK(log_terms(cluster, node(4)) == std::vector<std::uint64_t>{1});
  CHECK(log_terms(cluster, node(5)) == std::vector<std::uint64_t>{1, 3});
  // The heart of Figure 8: (2, term 2) is on a majority, yet not committed,
  // because it is not of the leader's term.
  CHECK(s1.commit_index() == LogIndex(1));
  for (const NodeId& id : nodes(1, 4)) CHECK(cluster.engine(id).commit_index() == LogIndex(1));
}

TEST_CASE("raft figure 8: an earlier term's entry on a majority is not committed, and a "
          "later leader may overwrite it (paper, figure 8 a-d)",
          "[raft][replication][figure8]") {
  Cluster cluster = make_cluster(nodes(1, 5), {}, plain_raft());
  figure_8_a_to_c(cluster);

  // (d) S1 crashes; S5 restarts and wins with votes from S2, S3, S4 (its
  // last term 3 beats their 2), then overwrites index 2 everywhere.
  cluster.crash(node(1));
  cluster.heal();
  cluster.restart(node(5));
  win_election(cluster, node(5));
  cluster.stabilize();
  for (const NodeId& id : nodes(2, 5)) {
    INFO(id);
    const std::vector<std::uint64_t> terms = log_terms(cluster, id);
    REQUIRE(terms.size() == 3);
    CHECK(terms[1] == 3);
    CHECK(cluster.engine(id).commit_index() == LogIndex(3));
  }
  // Had S1 committed (2, term 2) in (c), the invariants checker would have
  // failed here (state-machine safety) as S5 commits (2, term 3).
  CHECK(cluster.invariants().known_committed() >= 3);
}

TEST_CASE("raft figure 8: once the leader's own-term entry is on a majority, both commit "
          "and the stale candidate cannot win (paper, figure 8 e)",
          "[raft][replication][figure8]") {
  Cluster cluster = make_cluster(nodes(1, 5), {}, plain_raft());
  figure_8_a_to_c(cluster);

  // (e) S1 replicates (3, term 4) to S2 and S3 before crashing: committing
  // it commits (2, term 2) too.
  cluster.stabilize();
  CHECK(cluster.engine(node(1)).commit_index() == LogIndex(3));
  cluster.tick(node(1));  // a heartbeat carries the commit index
  cluster.stabilize();
  CHECK(cluster.engine(node(2)).commit_index() == LogIndex(3));
  cluster.crash(node(1));
  cluster.heal();
  cluster.restart(node(5));
  for (int round = 0; round < 5; ++round) {
    REQUIRE(cluster.engine(node(5)).campaign().is_ok());
    cluster.stabilize();
    CHECK(cluster.engine(node(5)).role() != RaftRole::kLeader);
  }
  // A server holding the committed entries wins instead and keeps them.
  win_election(cluster, node(2));
  cluster.stabilize();
  for (const NodeId& id : nodes(2, 5)) {
    INFO(id);
    const std::vector<std::uint64_t> terms = log_terms(cluster, id);
    REQUIRE(terms.size() >= 3);
    CHECK(terms[1] == 2);
    CHECK(terms[2] == 4);
  }
}

}  // namespace
}  // namespace nodenomad
