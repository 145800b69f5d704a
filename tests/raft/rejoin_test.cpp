// A node added back under an id it had before, with its store emptied (a
// shard replica that moved away, was dropped and moves back): Raft assumes
// a member never forgets, and this one has. docs/simulation.md,
// "Findings", seeds 10474 and 760129.
#include "raft/raft_test_support.hpp"

namespace nodenomad {
namespace {

using raft_test::Cluster;
using raft_test::make_cluster;
using raft_test::node;
using raft_test::nodes;

ConfChange one_change(ConfChangeType type, const NodeId& who) {
  return ConfChange{ConfChangeTransition::kAuto, {{type, who}}};
}

// Takes n3 out of the group {n1, n2, n3}, led by `leader`, until every
// node has applied it.
void remove_n3(Cluster& cluster, RaftEngine& leader) {
  REQUIRE(leader.propose_conf_change(one_change(ConfChangeType::kRemoveNode, node(3))).is_ok());
  cluster.stabilize();
  cluster.tick_all();
  cluster.stabilize();
  REQUIRE(leader.conf_state().voters == nodes(1, 2));
}

// A peer removed and added back with an empty store (a shard's replica that
// moved away, was dropped, and is moving back) must not get a snapshot whose
// configuration predates its return: it would find itself a voter of the old
// group, with none of the votes and entries its former self promised, and
// could lead a split brain (docs/simulation.md, "Findings", seed 760129).
// Here nothing is written after the return, so the state machine's snapshot
// stays behind the configuration change until the leader moves it on.
TEST_CASE("raft rejoin: a peer added back gets a snapshot that names it as it is now",
          "[raft][rejoin][snapshot]") {
  Cluster cluster = make_cluster(nodes(1, 3));
  cluster.elect(node(1));
  REQUIRE(cluster.propose(node(1), "a").is_ok());
  cluster.stabilize();
  RaftEngine& leader = cluster.engine(node(1));
  remove_n3(cluster, leader);
  // n3 drops its replica; the leader compacts through its state machine's
  // index, which is before the removal (a configuration change is not the
  // state machine's).
  cluster.crash(node(3));
  const LogIndex state_index = cluster.state_machine(node(1)).last_applied_index();
  REQUIRE(state_index < leader.applied_index());
  REQUIRE(leader.compact(state_index).is_ok());
  cluster.restart_empty(node(3));
  REQUIRE(cluster.engine(node(3)).conf_state() == ConfState{});

  std::vector<SnapshotMeta> delivered;
  cluster.on_deliver = [&](const Message& m) {
    if (m.type == MessageType::kSnapshot && m.to == node(3)) delivered.push_back(m.snapshot.meta);
  };
  const Result<ProposeResult> added =
      leader.propose_conf_change(one_change(ConfChangeType::kAddLearner, node(3)));
  REQUIRE(added.is_ok());
  for (int i = 0; i < 10; ++i) {
    cluster.stabilize();
    cluster.tick(node(1));
  }
  cluster.stabilize();

  REQUIRE_FALSE(delivered.empty());
  for (const SnapshotMeta& meta : delivered) {
    INFO("snapshot at " << meta.index.value());
    CHECK(meta.index > added->index);
    CHECK(meta.conf_state.voters == nodes(1, 2));
    CHECK(meta.conf_state.learners == std::vector<NodeId>{node(3)});
  }
  RaftEngine& back = cluster.engine(node(3));
  CHECK(back.conf_state().voters == nodes(1, 2));
  CHECK(back.conf_state().learners == std::vector<NodeId>{node(3)});
  CHECK(cluster.state_machine(node(3)).commands() == std::vector<std::string>{"a"});
  CHECK_FALSE(back.campaign().is_ok());
  CHECK(back.applied_index() == leader.applied_index());
}


// An acknowledgement sent by n3 before it left arrives after n3 was added
// back empty: the leader takes it for the new n3's and believes it holds
// entries it does not. The new n3 must still get the log.
TEST_CASE("raft rejoin: a late acknowledgement of the former member does not stall the new one",
          "[raft][rejoin]") {
  Cluster cluster = make_cluster(nodes(1, 3));
  cluster.elect(node(1));
  REQUIRE(cluster.propose(node(1), "a").is_ok());
  cluster.stabilize();
  // n3 acknowledges "b"; the acknowledgement is held back.
  REQUIRE(cluster.propose(node(1), "b").is_ok());
  cluster.process_all_ready();
  REQUIRE(cluster.deliver_first(raft_test::between(node(1), node(3))));
  cluster.process_all_ready();
  std::optional<Message> late;
  for (auto it = cluster.queue().begin(); it != cluster.queue().end(); ++it) {
    if (it->from == node(3) && it->type == MessageType::kAppendResponse && !it->reject) {
      late = *it;
      cluster.queue().erase(it);
      break;
    }
  }
  REQUIRE(late.has_value());
  cluster.stabilize();
  RaftEngine& leader = cluster.engine(node(1));
  remove_n3(cluster, leader);
  cluster.crash(node(3));
  cluster.restart_empty(node(3));
  // n3 is added back; the leader's first messages to it are lost, and the
  // late acknowledgement is the first word from n3 it gets.
  cluster.drop_rule = [](const Message& m) { return m.to == node(3) || m.from == node(3); };
  REQUIRE(leader.propose_conf_change(one_change(ConfChangeType::kAddLearner, node(3))).is_ok());
  cluster.stabilize();
  REQUIRE(leader.conf_state().learners == std::vector<NodeId>{node(3)});
  cluster.drop_rule = nullptr;
  cluster.queue().push_front(*late);
  REQUIRE(cluster.deliver_first(raft_test::between(node(3), node(1))));
  REQUIRE(leader.progress(node(3)).has_value());
  CHECK(leader.progress(node(3))->match >= late->index);  // the leader was fooled
  for (int i = 0; i < 20; ++i) {
    cluster.stabilize();
    cluster.tick_all();
  }
  cluster.stabilize();
  CHECK(cluster.engine(node(3)).applied_index() == leader.applied_index());
  CHECK(cluster.state_machine(node(3)).commands() == std::vector<std::string>{"a", "b"});
}

Message to_n4(MessageType type, ConfState conf = {}) {
  Message m;
  m.type = type;
  m.from = node(2);
  m.to = node(4);
  m.term = Term(5);
  m.index = LogIndex(3);
  m.log_term = Term(1);
  if (type == MessageType::kSnapshot) {
    m.snapshot.meta = SnapshotMeta{LogIndex(3), Term(1), std::move(conf)};
    m.snapshot.transfer_id = 11;
    m.snapshot.last = true;  // an empty stream: a state with no commands
  }
  return m;
}

std::size_t sent_by(Cluster& cluster, const NodeId& from) {
  cluster.process_all_ready();
  std::size_t n = 0;
  for (const Message& m : cluster.queue()) n += m.from == from ? 1 : 0;
  return n;
}

TEST_CASE("raft rejoin: a node with no configuration yet votes for no one when told not to",
          "[raft][rejoin]") {
  RaftConfig base = raft_test::default_config();
  base.unconfigured_votes = false;
  Cluster cluster = make_cluster(nodes(1, 3), {}, base);
  cluster.add_empty_node(node(4));
  for (MessageType type : {MessageType::kPreVote, MessageType::kVote}) {
    cluster.queue().push_back(to_n4(type));
    cluster.deliver_first(raft_test::of_type(type));
  }
  CHECK(sent_by(cluster, node(4)) == 0);
  CHECK(cluster.engine(node(4)).term() == Term(0));
  CHECK(cluster.engine(node(4)).hard_state().vote.empty());

  // The library's default: a voter added directly with an empty store votes.
  Cluster plain = make_cluster(nodes(1, 3));
  plain.add_empty_node(node(4));
  plain.queue().push_back(to_n4(MessageType::kVote));
  plain.deliver_first(raft_test::of_type(MessageType::kVote));
  CHECK(sent_by(plain, node(4)) == 1);
  CHECK(plain.engine(node(4)).hard_state().vote == node(2));
}

TEST_CASE("raft rejoin: a node with no configuration yet takes no snapshot naming it a voter",
          "[raft][rejoin][snapshot]") {
  RaftConfig base = raft_test::default_config();
  base.members_join_as_learners = true;
  Cluster cluster = make_cluster(nodes(1, 3), {}, base);
  cluster.add_empty_node(node(4));
  ConfState before;  // from before n4 left: n4 a voter
  before.voters = nodes(2, 4);
  ConfState leaving;  // a joint configuration taking it out
  leaving.voters = nodes(1, 3);
  leaving.voters_outgoing = nodes(2, 4);
  for (const ConfState& old : {before, leaving}) {
    cluster.queue().push_back(to_n4(MessageType::kSnapshot, old));
    cluster.deliver_first(raft_test::of_type(MessageType::kSnapshot));
    CHECK(sent_by(cluster, node(4)) == 0);
    CHECK(cluster.state_machine(node(4)).restores() == 0);
    CHECK(cluster.engine(node(4)).conf_state() == ConfState{});
    CHECK(cluster.engine(node(4)).term() == Term(0));
  }
  // The configuration that added it back, as a learner, is taken.
  ConfState now;
  now.voters = nodes(1, 3);
  now.learners = {node(4)};
  cluster.queue().push_back(to_n4(MessageType::kSnapshot, now));
  cluster.deliver_first(raft_test::of_type(MessageType::kSnapshot));
  cluster.process_all_ready();
  CHECK(cluster.state_machine(node(4)).restores() == 1);
  CHECK(cluster.engine(node(4)).conf_state() == now);
  CHECK(cluster.engine(node(4)).last_index() == LogIndex(3));
  CHECK_FALSE(cluster.engine(node(4)).campaign().is_ok());  // a learner
}

}  // namespace
}  // namespace nodenomad
