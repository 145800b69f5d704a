// Snapshots: log compaction, and InstallSnapshot streamed in bounded chunks
// to a follower whose next entries are compacted.
#include <algorithm>

#include "raft/raft_test_support.hpp"

namespace nodenomad {
namespace {

using raft_test::Cluster;
using raft_test::make_cluster;
using raft_test::node;
using raft_test::nodes;

RaftConfig chunky_config() {
  RaftConfig c = raft_test::default_config();
  c.snapshot_chunk_bytes = 64;
  c.max_snapshot_chunks_in_flight = 2;
  return c;
}

// n3 misses 40 commands while cut off; the leader n1 then compacts its log.
Cluster lagging_follower_cluster(RaftConfig config = chunky_config()) {
  Cluster cluster = make_cluster(nodes(1, 3), {}, std::move(config));
  cluster.elect(node(1));
  cluster.isolate(node(3));
  for (int i = 0; i < 40; ++i) {
    REQUIRE(cluster.propose(node(1), "command-" + std::to_string(i) + "-xxxxxxxx").is_ok());
  }
  cluster.stabilize();
  cluster.tick(node(1));
  cluster.stabilize();
  RaftEngine& leader = cluster.engine(node(1));
  REQUIRE(leader.applied_index() == LogIndex(41));
  REQUIRE(leader.compact(leader.applied_index()).is_ok());
  REQUIRE(leader.first_index() == LogIndex(42));
  return cluster;
}

std::size_t queued_chunks_to(Cluster& cluster, const NodeId& to) {
  return static_cast<std::size_t>(std::count_if(
      cluster.queue().begin(), cluster.queue().end(),
      [&](const Message& m) { return m.type == MessageType::kSnapshot && m.to == to; }));
}

// Runs the cluster until the leader has chunks for `to` queued (undelivered).
void until_chunks_queued(Cluster& cluster, const NodeId& to) {
  for (int i = 0; i < 10; ++i) {
    cluster.process_all_ready();
    if (queued_chunks_to(cluster, to) > 0) return;
    cluster.deliver_all();
  }
  FAIL("no snapshot chunk was sent to " << to);
}

TEST_CASE("raft snapshot: compaction drops the log through LogStore::compact",
          "[raft][snapshot]") {
  Cluster cluster = make_cluster(nodes(1, 3));
  cluster.elect(node(1));
  for (int i = 0; i < 10; ++i) REQUIRE(cluster.propose(node(1), "c").is_ok());
  cluster.stabilize();
  RaftEngine& leader = cluster.engine(node(1));
  CHECK(leader.compact(leader.applied_index() + 1).is(StatusCode::kInvalidArgument));
  REQUIRE(leader.compact(LogIndex(6)).is_ok());
  const SnapshotMeta meta = cluster.store(node(1)).snapshot_meta();
  CHECK(meta.index == LogIndex(6));
  CHECK(meta.term == leader.term());
  CHECK(meta.conf_state == leader.conf_state());
  CHECK(leader.first_index() == LogIndex(7));
  CHECK_FALSE(leader.term_at(LogIndex(5)).is_ok());
  CHECK(leader.term_at(LogIndex(6)).is_ok());
  // Compacting again below the snapshot is a no-op; the group goes on.
  CHECK(leader.compact(LogIndex(3)).is_ok());
  REQUIRE(cluster.propose(node(1), "after").is_ok());
  cluster.stabilize();
  CHECK(cluster.engine(node(2)).commit_index() == LogIndex(12));
}

TEST_CASE("raft snapshot: a lagging follower gets the state in bounded chunks",
          "[raft][snapshot]") {
  Cluster cluster = lagging_follower_cluster();
  std::size_t chunks = 0;
  std::size_t largest_window = 0;
  cluster.on_deliver = [&](const Message& m) {
    if (m.type != MessageType::kSnapshot) return;
    ++chunks;
    CHECK(m.snapshot.data.size() <= 64);
    CHECK(m.snapshot.meta.index == LogIndex(41));
    // Never more than max_snapshot_chunks_in_flight chunks on the wire.
    largest_window = std::max(largest_window, queued_chunks_to(cluster, node(3)) + 1);
  };
  cluster.heal();
  for (int i = 0; i < 30 && cluster.engine(node(3)).applied_index() < LogIndex(41); ++i) {
    cluster.tick_all();
    cluster.stabilize();
  }
  const raft_test::TestStateMachine& sm = cluster.state_machine(node(3));
  CHECK(sm.restores() == 1);
  CHECK(sm.commands() == cluster.state_machine(node(1)).commands());
  CHECK(sm.largest_restore_chunk() <= 64);
  // 40 commands of ~26 bytes, length-prefixed: well over a dozen chunks.
  CHECK(chunks >= 15);
  CHECK(largest_window <= 2);
  CHECK(cluster.store(node(3)).snapshot_meta().index == LogIndex(41));
  CHECK(cluster.store(node(3)).snapshot_meta().conf_state == cluster.engine(node(1)).conf_state());
  // Ordinary replication continues after the snapshot.
  REQUIRE(cluster.propose(node(1), "after-snapshot").is_ok());
  cluster.stabilize();
  cluster.tick_all();
  cluster.stabilize();
  CHECK(cluster.state_machine(node(3)).commands().back() == "after-snapshot");
  CHECK(cluster.engine(node(1)).progress(node(3))->state == ProgressState::kReplicate);
}

TEST_CASE("raft snapshot: a source with no chunk ready pauses the stream until the host says so",
          "[raft][snapshot]") {
  Cluster cluster = lagging_follower_cluster();
  auto open = std::make_shared<bool>(false);
  cluster.state_machine(node(1)).gate_snapshots(open);
  cluster.heal();
  for (int i = 0; i < 3; ++i) {
    cluster.tick_all();
    cluster.stabilize();
  }
  // The transfer started (n3 is in snapshot state) but nothing was read.
  REQUIRE(cluster.engine(node(1)).progress(node(3))->state == ProgressState::kSnapshot);
  CHECK(cluster.engine(node(1)).progress(node(3))->snapshot_bytes_sent == 0);
  CHECK(cluster.state_machine(node(3)).restores() == 0);
  // Ready again: the host's call alone resumes the stream, no tick needed.
  *open = true;
  cluster.engine(node(1)).snapshot_chunks_ready();
  cluster.stabilize();
  CHECK(cluster.state_machine(node(3)).restores() == 1);
  CHECK(cluster.state_machine(node(3)).commands() == cluster.state_machine(node(1)).commands());
}

TEST_CASE("raft snapshot: lost chunks are sent again", "[raft][snapshot]") {
  Cluster cluster = lagging_follower_cluster();
  int dropped = 0;
  cluster.drop_rule = [&](const Message& m) {
    // Lose every fifth chunk the first time round.
    if (m.type == MessageType::kSnapshot && m.snapshot.offset % 320 == 128 && dropped < 3) {
      ++dropped;
      return true;
    }
    return false;
  };
  cluster.heal();
  for (int i = 0; i < 100 && cluster.engine(node(3)).applied_index() < LogIndex(41); ++i) {
    cluster.tick_all();
    cluster.stabilize();
  }
  CHECK(dropped == 3);
  CHECK(cluster.state_machine(node(3)).restores() == 1);
  CHECK(cluster.state_machine(node(3)).commands() == cluster.state_machine(node(1)).commands());
}

TEST_CASE("raft snapshot: a transfer to a vanished follower is abandoned and restarted",
          "[raft][snapshot]") {
  Cluster cluster = lagging_follower_cluster();
  cluster.heal();
  cluster.tick(node(1));
  until_chunks_queued(cluster, node(3));
  REQUIRE(cluster.engine(node(1)).progress(node(3))->state == ProgressState::kSnapshot);
  cluster.deliver_all();  // the first chunks arrive
  cluster.crash(node(3));
  for (int i = 0; i < 45; ++i) {
    cluster.tick(node(1));
    cluster.tick(node(2));
    cluster.stabilize();
  }
  CHECK(cluster.engine(node(1)).progress(node(3))->state == ProgressState::kProbe);
  cluster.restart(node(3));
  for (int i = 0; i < 30 && cluster.engine(node(3)).applied_index() < LogIndex(41); ++i) {
    cluster.tick_all();
    cluster.stabilize();
  }
  CHECK(cluster.state_machine(node(3)).commands() == cluster.state_machine(node(1)).commands());
}

TEST_CASE("raft snapshot: the state machine is replaced only between Ready cycles",
          "[raft][snapshot]") {
  RaftConfig config = chunky_config();
  config.snapshot_chunk_bytes = 1u << 20;  // one data chunk and the final empty one
  Cluster cluster = lagging_follower_cluster(config);
  cluster.heal();
  cluster.tick(node(1));
  until_chunks_queued(cluster, node(3));
  cluster.drop_queued([](const Message& m) { return m.to != node(3); });
  // Deliver the data chunk, then the final one while n3 has a Ready out.
  REQUIRE(cluster.deliver_first([](const Message& m) {
    return m.type == MessageType::kSnapshot && !m.snapshot.last;
  }));
  REQUIRE(cluster.engine(node(3)).has_ready());
  Ready outstanding = cluster.engine(node(3)).ready();
  REQUIRE(cluster.deliver_first([](const Message& m) {
    return m.type == MessageType::kSnapshot && m.snapshot.last;
  }));
  CHECK(cluster.state_machine(node(3)).restores() == 0);
  cluster.complete_ready(node(3), outstanding);
  CHECK(cluster.state_machine(node(3)).restores() == 1);
  Ready installed = cluster.engine(node(3)).ready();
  REQUIRE(installed.snapshot.has_value());
  CHECK(installed.snapshot->index == LogIndex(41));
  // The acknowledgement waits for the LogStore to record the snapshot.
  CHECK(installed.messages.empty());
  REQUIRE(installed.messages_after_persist.size() == 1);
  CHECK(installed.messages_after_persist[0].snapshot.last);
  cluster.complete_ready(node(3), installed);
  CHECK(cluster.store(node(3)).first_index() == LogIndex(42));
}

TEST_CASE("raft snapshot: a restored follower restarts from its LogStore",
          "[raft][snapshot][persistence]") {
  Cluster cluster = lagging_follower_cluster();
  cluster.heal();
  for (int i = 0; i < 30 && cluster.engine(node(3)).applied_index() < LogIndex(41); ++i) {
    cluster.tick_all();
    cluster.stabilize();
  }
  REQUIRE(cluster.state_machine(node(3)).restores() == 1);
  cluster.crash(node(3));
  cluster.restart(node(3));
  RaftEngine& follower = cluster.engine(node(3));
  CHECK(follower.first_index() == LogIndex(42));
  CHECK(follower.commit_index() >= LogIndex(41));
  CHECK(follower.conf_state().voters == nodes(1, 3));
  REQUIRE(cluster.propose(node(1), "later").is_ok());
  for (int i = 0; i < 3; ++i) {
    cluster.tick_all();
    cluster.stabilize();
  }
  CHECK(cluster.state_machine(node(3)).commands().back() == "later");
}

TEST_CASE("raft snapshot: compaction keeps the configuration of the compacted index",
          "[raft][snapshot][membership]") {
  Cluster cluster = make_cluster(nodes(1, 3));
  cluster.elect(node(1));
  REQUIRE(cluster.propose(node(1), "a").is_ok());
  cluster.stabilize();
  const LogIndex before_change = cluster.engine(node(1)).applied_index();
  REQUIRE(cluster.engine(node(1))
              .propose_conf_change(ConfChange{ConfChangeTransition::kAuto,
                                              {{ConfChangeType::kAddLearner, node(4)}}})
              .is_ok());
  cluster.stabilize();
  REQUIRE(cluster.engine(node(1)).compact(before_change).is_ok());
  CHECK(cluster.store(node(1)).snapshot_meta().conf_state.learners.empty());
  // The conf change entry is not the state machine's: it has not applied
  // that index, so the log cannot be compacted through it yet.
  const LogIndex change_index = cluster.engine(node(1)).applied_index();
  CHECK(cluster.engine(node(1)).compact(change_index).is(StatusCode::kInvalidArgument));
  REQUIRE(cluster.propose(node(1), "b").is_ok());
  cluster.stabilize();
  REQUIRE(cluster.engine(node(1)).compact(cluster.engine(node(1)).applied_index()).is_ok());
  CHECK(cluster.store(node(1)).snapshot_meta().conf_state.learners ==
        std::vector<NodeId>{node(4)});
}

}  // namespace
}  // namespace nodenomad
