// Regressions the whole-node simulation found, pinned down below the
// simulation where a seed would be too fragile a witness (docs/simulation.md,
// "Findings").
#include <catch2/catch.hpp>

#include <memory>
#include <optional>
#include <vector>

#include "node/group_replica.hpp"
#include "nodenomad/memory_log_store.hpp"
#include "nodenomad/node.hpp"
#include "nodenomad/storage/storage_engine.hpp"

namespace nodenomad::node {
namespace {

// Collects what a replica sends; syncs when asked.
class RecordingHost final : public ReplicaHost {
 public:
  void send_raft(GroupId /*group*/, Message message) override { sent.push_back(std::move(message)); }
  void request_sync(GroupReplica& /*replica*/) override { sync_asked = true; }
  void on_replica_failed(GroupId /*group*/, const Status& why) override { failure = why; }
  void on_soft_state(GroupId /*group*/, const SoftState& /*soft*/) override {}
  void on_applied(GroupId /*group*/) override {}

  std::vector<Message> sent;
  bool sync_asked = false;
  Status failure;
};

// A state machine whose restores end with `error` (from finish()).
class FailingRestore final : public StateMachine {
 public:
  explicit FailingRestore(Status error) : error_(std::move(error)) {}
  Result<std::string> apply(LogIndex index, std::string_view /*command*/) override {
    applied_ = index;
    return std::string();
  }
  LogIndex last_applied_index() const override { return applied_; }
  Result<std::unique_ptr<SnapshotSource>> open_snapshot() override {
    return Status::not_supported("this test takes no snapshot");
  }
  Result<std::unique_ptr<SnapshotSink>> begin_restore(LogIndex /*index*/) override {
    ++restores;
    return std::unique_ptr<SnapshotSink>(std::make_unique<Sink>(error_));
  }
  int restores = 0;

 private:
  class Sink final : public SnapshotSink {
   public:
    explicit Sink(Status error) : error_(std::move(error)) {}
    Status write_chunk(std::string_view /*chunk*/) override { return Status::ok(); }
    Status finish() override { return error_; }

   private:
    Status error_;
  };
  Status error_;
  LogIndex applied_;
};

struct Replica {
  explicit Replica(const std::optional<ConfState>& bootstrap,
                   std::shared_ptr<StateMachine> machine = nullptr, GroupId group = GroupId(2)) {
    auto store = std::make_unique<MemoryLogStore>();
    if (bootstrap) REQUIRE(RaftEngine::bootstrap(*store, *bootstrap).is_ok());
    if (!machine) {
      StorageOptions so;
      so.mode = StorageMode::kReplicated;  // no dir: in memory
      Result<std::unique_ptr<StorageEngine>> engine = StorageEngine::open(so);
      REQUIRE(engine.is_ok());
      machine = std::shared_ptr<StorageEngine>(std::move(*engine));
    }
    ReplicaParts parts;
    parts.log_store = std::move(store);
    parts.state_machine = std::move(machine);
    NodeOptions options;
    options.id = NodeId("node-1");
    // Configured as the node configures a group of its kind (GroupId(2): a
    // shard's).
    const RaftConfig config = replica_raft_config(options, group);
    Result<std::unique_ptr<GroupReplica>> opened =
        GroupReplica::open(group, config, std::move(parts), ReplicaLimits{}, Rng(1), host);
    REQUIRE(opened.is_ok());
    replica = std::move(*opened);
  }

  // Steps a vote request from a candidate whose log ends at index 32 of
  // term 3, lets the disk finish, and answers the vote responses sent.
  std::vector<Message> ask(MessageType type) {
    Message m;
    m.type = type;
    m.from = NodeId("node-2");
    m.to = NodeId("node-1");
    m.term = Term(5);
    m.index = LogIndex(32);
    m.log_term = Term(3);
    replica->step(m);
    if (host.sync_asked) {
      host.sync_asked = false;
      replica->on_synced(replica->log_store().sync());
    }
    std::vector<Message> answers;
    for (const Message& sent : host.sent) {
      if (sent.type == MessageType::kVoteResponse || sent.type == MessageType::kPreVoteResponse) {
        answers.push_back(sent);
      }
    }
    host.sent.clear();
    return answers;
  }

  RecordingHost host;
  std::unique_ptr<GroupReplica> replica;
};

// Seed 10474 of cluster_sim_soak --duration-ms 30000 --duplicate-requests
// (before the fix): shard 1 moved from node-1 to node-4 while node-2 was
// down, node-1 dropped its copy, then a rebalance moved the shard back to
// node-1, which created an empty replica. node-2 restarted with a log that
// still named node-1 a voter and lacked the committed entries of the move;
// node-1's empty replica granted it a vote, node-2 became leader and
// overwrote an acknowledged write (two writes answered with version 5).
TEST_CASE("a replica created empty grants no vote and no pre-vote", "[sim_cluster][regression]") {
  Replica empty(std::nullopt);
  CHECK(empty.ask(MessageType::kPreVote).empty());
  CHECK(empty.ask(MessageType::kVote).empty());
}

TEST_CASE("a bootstrapped replica still answers votes (control)", "[sim_cluster][regression]") {
  ConfState conf;
  conf.voters = {NodeId("node-1"), NodeId("node-2"), NodeId("node-3")};
  Replica member(conf);
  const std::vector<Message> pre = member.ask(MessageType::kPreVote);
  REQUIRE(pre.size() == 1);
  CHECK_FALSE(pre[0].reject);
  const std::vector<Message> vote = member.ask(MessageType::kVote);
  REQUIRE(vote.size() == 1);
  CHECK_FALSE(vote[0].reject);
}

// Seed 200413 of cluster_sim_soak --duration-ms 20000 --diverge 0.7 (before
// the fix): node-2's next fsync failed while it restored shard 0's
// snapshot. Its storage engine went failed, Raft saw only a rejected
// snapshot, and node-2 stayed a voter that refused every later restore
// ("the storage engine is failed") for the rest of the run, never catching
// up. A disk error of a restore now stops the replica, as a failed fsync of
// its log does (the node then fail-stops).
Message snapshot_from_leader() {
  Message m;
  m.type = MessageType::kSnapshot;
  m.from = NodeId("node-2");
  m.to = NodeId("node-1");
  m.term = Term(5);
  m.snapshot.meta.index = LogIndex(40);
  m.snapshot.meta.term = Term(4);
  // A move's target: a learner (a shard group refuses an empty replica a
  // snapshot that names it a voter; tests/raft/rejoin_test.cpp).
  m.snapshot.meta.conf_state.voters = {NodeId("node-2"), NodeId("node-3")};
  m.snapshot.meta.conf_state.learners = {NodeId("node-1")};
  m.snapshot.transfer_id = 7;
  m.snapshot.data = "state";
  m.snapshot.last = true;
  return m;
}

TEST_CASE("a disk error while restoring a snapshot stops the replica",
          "[sim_cluster][regression]") {
  auto machine = std::make_shared<FailingRestore>(Status::io_error("sync restore.tmp: injected"));
  Replica r(std::nullopt, machine);
  r.replica->step(snapshot_from_leader());
  CHECK(machine->restores == 1);
  REQUIRE(r.replica->failed());
  CHECK(r.host.failure.is(StatusCode::kIOError));
  CHECK(r.host.failure.message().find("restoring a snapshot") != std::string_view::npos);
  // Stopped: the leader's next attempt is not taken.
  r.replica->step(snapshot_from_leader());
  CHECK(machine->restores == 1);
}

TEST_CASE("a malformed snapshot is rejected and taken again, without stopping (control)",
          "[sim_cluster][regression]") {
  auto machine = std::make_shared<FailingRestore>(Status::invalid_argument("bad chunk"));
  Replica r(std::nullopt, machine);
  r.replica->step(snapshot_from_leader());
  CHECK_FALSE(r.replica->failed());
  CHECK(r.host.failure.is_ok());
  r.replica->step(snapshot_from_leader());
  CHECK(machine->restores == 2);
}

// Seed 760129 of cluster_sim_soak --duration-ms 20000 --diverge 0.7 (before
// the fix): a shard moved off node-1 and back; the new, empty replica took a
// snapshot whose configuration still named node-1 a voter, campaigned in
// the old group and led a split brain. The leader no longer sends such a
// snapshot (tests/raft/rejoin_test.cpp); a shard's empty replica also
// refuses one, from a leader that lags or a late message.
TEST_CASE("an empty replica of a shard takes no snapshot that names it a voter",
          "[sim_cluster][regression]") {
  Message old = snapshot_from_leader();
  old.snapshot.meta.conf_state = ConfState{};
  old.snapshot.meta.conf_state.voters = {NodeId("node-1"), NodeId("node-2"), NodeId("node-3")};
  auto machine = std::make_shared<FailingRestore>(Status::invalid_argument("counted only"));
  Replica shard(std::nullopt, machine);
  shard.replica->step(old);
  CHECK(machine->restores == 0);
  shard.replica->step(snapshot_from_leader());  // names it a learner
  CHECK(machine->restores == 1);

  // The metadata group, which may promote an empty learner, takes it.
  auto meta_machine = std::make_shared<FailingRestore>(Status::invalid_argument("counted only"));
  Replica meta(std::nullopt, meta_machine, kMetadataGroup);
  meta.replica->step(old);
  CHECK(meta_machine->restores == 1);
}

}  // namespace
}  // namespace nodenomad::node
