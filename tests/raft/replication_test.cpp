// Log replication: commit and apply, batching, the leader's parallel write,
// pipelining and flow control, fast backtracking, restarts.
#include "raft/raft_test_support.hpp"

namespace nodenomad {
namespace {

using raft_test::Cluster;
using raft_test::make_cluster;
using raft_test::node;
using raft_test::nodes;

std::size_t count_appends_to(const std::vector<Message>& messages, const NodeId& to) {
  std::size_t n = 0;
  for (const Message& m : messages) n += (m.type == MessageType::kAppend && m.to == to) ? 1 : 0;
  return n;
}

// A leader whose followers are in the replicate state (one round done).
Cluster replicating_cluster(RaftConfig config = raft_test::default_config()) {
  Cluster cluster = make_cluster(nodes(1, 3), {}, std::move(config));
  cluster.elect(node(1));
  REQUIRE(cluster.propose(node(1), "warm-up").is_ok());
  cluster.stabilize();
  REQUIRE(cluster.engine(node(1)).progress(node(2))->state == ProgressState::kReplicate);
  return cluster;
}

TEST_CASE("raft replication: proposals commit everywhere and apply in order",
          "[raft][replication]") {
  Cluster cluster = make_cluster(nodes(1, 3));
  cluster.elect(node(1));
  for (int i = 0; i < 20; ++i) {
    REQUIRE(cluster.propose(node(1), "cmd-" + std::to_string(i)).is_ok());
    if (i % 3 == 0) cluster.stabilize();
  }
  cluster.stabilize();
  cluster.tick_all();
  cluster.stabilize();
  for (const NodeId& id : nodes(1, 3)) {
    const auto& commands = cluster.state_machine(id).commands();
    REQUIRE(commands.size() == 20);
    for (int i = 0; i < 20; ++i) CHECK(commands[static_cast<std::size_t>(i)] == "cmd-" + std::to_string(i));
    CHECK(cluster.engine(id).commit_index() == LogIndex(21));
  }
}

TEST_CASE("raft replication: a follower rejects proposals with a leader hint",
          "[raft][replication]") {
  Cluster cluster = make_cluster(nodes(1, 3));
  cluster.elect(node(1));
  const Result<ProposeResult> r = cluster.propose(node(2), "x");
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().is(StatusCode::kNotLeader));
  CHECK(r.status().message().find("n1") != std::string_view::npos);
  CHECK(cluster.engine(node(2)).leader() == node(1));
}

TEST_CASE("raft replication: proposals made together leave in one append per follower",
          "[raft][replication][batching]") {
  Cluster cluster = replicating_cluster();
  for (int i = 0; i < 10; ++i) REQUIRE(cluster.propose(node(1), "batch").is_ok());
  Ready rd = cluster.engine(node(1)).ready();
  for (const NodeId& follower : nodes(2, 3)) {
    REQUIRE(count_appends_to(rd.messages, follower) == 1);
  }
  for (const Message& m : rd.messages) CHECK(m.entries.size() == 10);
  cluster.complete_ready(node(1), rd);
  cluster.stabilize();
  CHECK(cluster.engine(node(3)).commit_index() == LogIndex(12));
}

TEST_CASE("raft replication: the leader sends entries while its own write is in flight, "
          "and counts its copy only once durable",
          "[raft][replication][persistence]") {
  Cluster cluster = replicating_cluster();
  cluster.crash(node(3));  // the quorum is now the leader and n2
  const LogIndex before = cluster.engine(node(1)).commit_index();
  const Result<ProposeResult> p = cluster.propose(node(1), "parallel");
  REQUIRE(p.is_ok());
  Ready rd = cluster.engine(node(1)).ready();
  // The entry is both to persist and already on its way to the followers.
  REQUIRE(rd.entries.size() == 1);
  CHECK(rd.entries[0].index == p->index);
  REQUIRE(count_appends_to(rd.messages, node(2)) == 1);
  for (const Message& m : rd.messages) cluster.queue().push_back(m);
  rd.messages.clear();
  CHECK(cluster.store(node(1)).last_index() < p->index);

  // n2 persists and acknowledges before the leader's write is durable.
  cluster.deliver_all();
  cluster.process_ready(node(2));
  cluster.deliver_all();
  CHECK(cluster.engine(node(1)).progress(node(2))->match == p->index);
  CHECK(cluster.engine(node(1)).commit_index() == before);

  cluster.complete_ready(node(1), rd);
  CHECK(cluster.engine(node(1)).commit_index() == p->index);
}

TEST_CASE("raft replication: pipelining keeps several appends in flight to a follower",
          "[raft][replication][flow_control]") {
  Cluster cluster = replicating_cluster();
  const LogIndex last = cluster.engine(node(1)).last_index();
  for (int i = 0; i < 3; ++i) {
    REQUIRE(cluster.propose(node(1), "p").is_ok());
    cluster.process_ready(node(1));  // sent, never delivered
  }
  const PeerProgress p = *cluster.engine(node(1)).progress(node(2));
  CHECK(p.state == ProgressState::kReplicate);
  CHECK(p.inflight_messages == 3);
  CHECK(p.match == last);
  CHECK(p.next == last + 4);
  cluster.stabilize();
  CHECK(cluster.engine(node(1)).progress(node(2))->inflight_messages == 0);
  CHECK(cluster.engine(node(2)).last_index() == last + 3);
}

TEST_CASE("raft replication: max_inflight_messages bounds appends in flight",
          "[raft][replication][flow_control]") {
  RaftConfig config = raft_test::default_config();
  config.max_inflight_messages = 3;
  Cluster cluster = replicating_cluster(config);
  std::size_t appends = 0;
  for (int i = 0; i < 10; ++i) {
    REQUIRE(cluster.propose(node(1), "p").is_ok());
    Ready rd = cluster.engine(node(1)).ready();
    appends += count_appends_to(rd.messages, node(2));
    cluster.complete_ready(node(1), rd);
  }
  CHECK(appends == 3);
  CHECK(cluster.engine(node(1)).progress(node(2))->inflight_messages == 3);
  // Acknowledgements open the window again and the rest follows.
  cluster.stabilize();
  CHECK(cluster.engine(node(2)).last_index() == cluster.engine(node(1)).last_index());
}

TEST_CASE("raft replication: max_inflight_bytes bounds bytes in flight",
          "[raft][replication][flow_control]") {
  RaftConfig config = raft_test::default_config();
  config.max_inflight_bytes = 250;
  Cluster cluster = replicating_cluster(config);
  for (int i = 0; i < 10; ++i) {
    REQUIRE(cluster.propose(node(1), std::string(100, 'b')).is_ok());
    cluster.process_ready(node(1));
  }
  const PeerProgress p = *cluster.engine(node(1)).progress(node(2));
  // The window is full once 250 bytes are out: three 100-byte appends.
  CHECK(p.inflight_messages == 3);
  CHECK(p.inflight_bytes == 300);
  cluster.stabilize();
  CHECK(cluster.engine(node(2)).last_index() == cluster.engine(node(1)).last_index());
}

TEST_CASE("raft replication: max_append_bytes splits a backlog into several appends",
          "[raft][replication][flow_control]") {
  RaftConfig config = raft_test::default_config();
  config.max_append_bytes = 300;
  Cluster cluster = replicating_cluster(config);
  cluster.isolate(node(3));
  for (int i = 0; i < 12; ++i) REQUIRE(cluster.propose(node(1), std::string(100, 'a')).is_ok());
  cluster.stabilize();
  cluster.heal();
  std::size_t appends = 0;
  cluster.on_deliver = [&](const Message& m) {
    if (m.type == MessageType::kAppend && m.to == node(3) && !m.entries.empty()) {
      ++appends;
      std::size_t bytes = 0;
      for (const Entry& e : m.entries) bytes += e.data.size();
      CHECK(bytes <= 300);
    }
  };
  for (int i = 0; i < 5; ++i) {
    cluster.tick_all();
    cluster.stabilize();
  }
  CHECK(appends >= 4);
  CHECK(cluster.engine(node(3)).last_index() == cluster.engine(node(1)).last_index());
}

TEST_CASE("raft replication: max_uncommitted_bytes refuses proposals with kBusy",
          "[raft][replication][flow_control]") {
  RaftConfig config = raft_test::default_config();
  config.max_uncommitted_bytes = 1000;
  Cluster cluster = replicating_cluster(config);
  cluster.isolate(node(1));
  int accepted = 0;
  Result<ProposeResult> last = Status::busy("none yet");
  for (int i = 0; i < 50; ++i) {
    last = cluster.propose(node(1), std::string(100, 'u'));
    if (!last.is_ok()) break;
    ++accepted;
  }
  REQUIRE_FALSE(last.is_ok());
  CHECK(last.status().is(StatusCode::kBusy));
  CHECK(accepted == 10);
  CHECK(cluster.engine(node(1)).uncommitted_bytes() == 1000);
  cluster.heal();
  cluster.stabilize();
  cluster.tick_all();
  cluster.stabilize();
  CHECK(cluster.engine(node(1)).uncommitted_bytes() == 0);
  CHECK(cluster.propose(node(1), std::string(100, 'u')).is_ok());
}

TEST_CASE("raft replication: a conflicting suffix is found in one round trip per term",
          "[raft][replication][backtracking]") {
  Cluster cluster = make_cluster(nodes(1, 3));
  cluster.elect(node(1));
  cluster.stabilize();
  // n1, cut off, appends 30 entries of its term that nobody else sees.
  cluster.isolate(node(1));
  for (int i = 0; i < 30; ++i) REQUIRE(cluster.propose(node(1), "lost").is_ok());
  cluster.process_all_ready();
  cluster.crash(node(1));
  // Another node leads a new term and commits entries of its own.
  const NodeId leader = raft_test::tick_until_leader(cluster);
  REQUIRE_FALSE(leader.empty());
  for (int i = 0; i < 5; ++i) REQUIRE(cluster.propose(leader, "kept").is_ok());
  cluster.stabilize();
  cluster.queue().clear();
  cluster.restart(node(1));
  REQUIRE(cluster.engine(node(1)).last_index() > cluster.engine(leader).last_index());

  std::size_t rejects = 0;
  cluster.on_deliver = [&](const Message& m) {
    if (m.type == MessageType::kAppendResponse && m.from == node(1) && m.reject) ++rejects;
  };
  cluster.heal();
  for (int i = 0; i < 3; ++i) {
    cluster.tick_all();
    cluster.stabilize();
  }
  // One rejection points the leader past all 30 conflicting entries.
  CHECK(rejects <= 2);
  CHECK(cluster.engine(node(1)).last_index() == cluster.engine(leader).last_index());
  CHECK(cluster.state_machine(node(1)).commands() == cluster.state_machine(leader).commands());
  for (const std::string& c : cluster.state_machine(node(1)).commands()) CHECK(c != "lost");
}

TEST_CASE("raft replication: a new leader appends a no-op of its own term",
          "[raft][replication]") {
  RaftConfig config = raft_test::default_config();
  config.check_quorum = false;  // so n2 may win while n1 still leads
  Cluster cluster = make_cluster(nodes(1, 3), {}, config);
  cluster.elect(node(1));
  cluster.elect(node(2));
  RaftEngine& leader = cluster.engine(node(2));
  const Result<std::vector<Entry>> last =
      leader.entries(leader.last_index(), leader.last_index().next(), 1);
  REQUIRE(last.is_ok());
  CHECK(last->front().term == leader.term());
  CHECK(last->front().data.empty());
  CHECK(leader.commit_index() == leader.last_index());
}

TEST_CASE("raft replication: a restarted cluster recovers its log and commit",
          "[raft][replication][persistence]") {
  Cluster cluster = make_cluster(nodes(1, 3));
  cluster.elect(node(1));
  for (int i = 0; i < 10; ++i) REQUIRE(cluster.propose(node(1), "r" + std::to_string(i)).is_ok());
  cluster.stabilize();
  std::map<NodeId, LogIndex> commits;
  for (const NodeId& id : nodes(1, 3)) {
    commits[id] = cluster.engine(id).commit_index();
    cluster.crash(id);
  }
  for (const NodeId& id : nodes(1, 3)) {
    cluster.restart(id);
    CHECK(cluster.engine(id).commit_index() >= cluster.store(id).hard_state().commit);
    CHECK(cluster.engine(id).last_index() == LogIndex(11));
  }
  // The invariants checker (run at every step) holds commit monotonic by id.
  const NodeId leader = raft_test::tick_until_leader(cluster);
  REQUIRE_FALSE(leader.empty());
  REQUIRE(cluster.propose(leader, "after-restart").is_ok());
  cluster.stabilize();
  cluster.tick_all();
  cluster.stabilize();
  for (const NodeId& id : nodes(1, 3)) {
    CHECK(cluster.engine(id).commit_index() > commits[id]);
    CHECK(cluster.state_machine(id).commands().size() == 11);
    CHECK(cluster.state_machine(id).commands().back() == "after-restart");
  }
}

TEST_CASE("raft replication: a crash before persisting loses nothing acknowledged",
          "[raft][replication][persistence]") {
  Cluster cluster = replicating_cluster();
  const Result<ProposeResult> p = cluster.propose(node(1), "in-flight");
  REQUIRE(p.is_ok());
  // The leader's appends leave, then it crashes with nothing persisted.
  cluster.crash_mid_ready(node(1));
  cluster.stabilize();
  CHECK(cluster.store(node(1)).last_index() < p->index);
  cluster.restart(node(1));
  const NodeId leader = raft_test::tick_until_leader(cluster);
  REQUIRE_FALSE(leader.empty());
  for (int i = 0; i < 3; ++i) {
    cluster.tick_all();
    cluster.stabilize();
  }
  // Followers had it, so the cluster kept it; everyone agrees.
  for (const NodeId& id : nodes(1, 3)) {
    CHECK(cluster.state_machine(id).commands() == cluster.state_machine(node(2)).commands());
  }
  CHECK(cluster.state_machine(node(2)).commands().back() == "in-flight");
}

TEST_CASE("raft replication: an unreachable follower falls back to probing",
          "[raft][replication][flow_control]") {
  Cluster cluster = replicating_cluster();
  RaftEngine& leader = cluster.engine(node(1));
  leader.report_unreachable(node(2));
  CHECK(leader.progress(node(2))->state == ProgressState::kProbe);
  REQUIRE(cluster.propose(node(1), "after").is_ok());
  cluster.stabilize();
  CHECK(leader.progress(node(2))->state == ProgressState::kReplicate);
  CHECK(cluster.engine(node(2)).last_index() == leader.last_index());
}

}  // namespace
}  // namespace nodenomad
